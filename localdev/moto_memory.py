"""Two changes to moto while a runner runs, so that a long run's memory stays the size of its data.

moto 5 keeps every model object it ever makes (``BaseModel.instances_tracked``, for its dashboard,
which the runner does not serve): every ``Item`` a write replaced, every stream record, every shard
iterator, every SQS message. And its ``TransactWriteItems`` deep-copies each table it writes to, once
per item of the transaction, to put it back if the transaction is cancelled: each copy is a new
``Table`` with new ``Item`` and ``StreamRecord`` objects, all of them kept. Under load the two made a
runner grow by gigabytes (a 2,000-webhook soak was killed by the kernel at 23.5 GB), and each copy costs
time in proportion to everything the table and its stream ever held.

So, while ``moto_patched()`` is open:

- models are not tracked, except S3's, whose reset closes the temporary file of every key it tracked;
- ``TransactWriteItems`` saves only the items it names (a deep copy of each, moto updates an item in
  place) and the length of each table's stream, and when moto cancels the transaction it puts those
  items back and drops the stream records written since, instead of swapping in a copy of the table.

What a transaction does is moto's own code; only its way of undoing changes. The differences are
closer to DynamoDB: a cancelled transaction undoes only its own writes (moto's copy also undid those
another thread made meanwhile), the table stays the same object (moto's swap left a stream reader
holding an iterator of the old table's stream, which never saw another record again), and a stream
read waits for a transaction in flight (in moto a reader could take records of a transaction about to
be cancelled; dropped, their sequence numbers would then be given again, to records the reader skips).
Stream records are dropped by count: a plain write of another thread in the middle of a cancelled
transaction would lose its record; the runner runs one function at a time.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# S3's reset disposes of each tracked key's temporary file: its models stay tracked.
TRACKED_SERVICES = frozenset({"s3"})

_lock = threading.Lock()
_users = 0
_undo: Callable[[], None] | None = None


@contextlib.contextmanager
def moto_patched() -> Iterator[None]:
    """moto without the retention described above, for as long as the block runs (nested: the outermost)."""
    global _users, _undo  # the patches are process-wide, as moto's state is
    with _lock:
        if _users == 0:
            _undo = _install()
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _undo is not None:
                _undo()
                _undo = None


def _install() -> Callable[[], None]:
    import moto.dynamodb.models as dynamodb_models
    from moto.core.common_models import BaseModel
    from moto.dynamodbstreams.models import ShardIterator

    backend_class = dynamodb_models.DynamoDBBackend
    real_transact = vars(backend_class)["transact_write_items"]
    real_read = vars(ShardIterator)["get"]
    transactions = threading.RLock()  # a transaction, or a read of a stream

    def untracked_new(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        instance = super(BaseModel, cls).__new__(cls)
        if cls.__module__.split(".")[1] in TRACKED_SERVICES:
            cls.instances_tracked.append(instance)
        return instance

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        with transactions:
            undo = _TransactionUndo.before(backend, transact_items)
            try:
                real_transact(backend, transact_items)
            except Exception:
                undo.apply()
                raise

    def read_stream(iterator: Any, limit: int = 1000) -> dict[str, Any]:
        with transactions:
            records: dict[str, Any] = real_read(iterator, limit)
            return records

    undo: list[Callable[[], None]] = []
    _replace(BaseModel, "__new__", staticmethod(untracked_new), undo)
    _replace(dynamodb_models, "copy", _TablesNotCopied(), undo)
    _replace(backend_class, "transact_write_items", transact_write_items, undo)
    _replace(ShardIterator, "get", read_stream, undo)

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore


def _replace(owner: object, name: str, value: object, undo: list[Callable[[], None]]) -> None:
    """``owner.name`` is ``value`` until the last of ``undo`` is called (set as is: a class's descriptors too)."""
    saved = vars(owner)[name]
    setattr(owner, name, value)
    undo.append(lambda: setattr(owner, name, saved))


class _TablesNotCopied:
    """The ``copy`` module as moto's DynamoDB backend sees it: a table's deep copy is the table itself.

    The backend deep-copies a table in one place only, ``transact_write_items``, to restore it; with the
    copy being the table, its restore changes nothing and ``_TransactionUndo`` restores instead.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


@dataclass(frozen=True)
class _Saved:
    """One item a transaction names, as it was before: ``None`` if there was none."""

    table: Any  # moto's Table
    hash_value: Any  # DynamoType
    range_value: Any  # DynamoType, or None without a sort key
    had_partition: bool  # moto's reads make an empty partition of a missing hash key: none is left behind
    item: Any  # a deep copy of moto's Item, or None


@dataclass(frozen=True)
class _TransactionUndo:
    saved: list[_Saved]
    stream_lengths: list[tuple[Any, int]]  # (moto's StreamShard, its record count before)

    @classmethod
    def before(cls, backend: Any, transact_items: list[dict[str, Any]]) -> _TransactionUndo:
        from moto.dynamodb.models.dynamo_type import DynamoType

        saved: list[_Saved] = []
        shards: dict[int, tuple[Any, int]] = {}
        for entry in transact_items:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue  # moto refuses it before writing anything
            operation, request = next(iter(entry.items()))
            table = backend.tables.get(request.get("TableName")) if isinstance(request, dict) else None
            if table is None:
                continue
            key = request.get("Item") if operation == "Put" else request.get("Key")
            try:
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, TypeError, AttributeError):
                continue  # no such key: moto fails this item without writing it
            had_partition = hash_value in table.items
            partition = table.items.get(hash_value)
            old = partition.get(range_value) if range_value is not None and partition is not None else partition
            saved.append(_Saved(table, hash_value, range_value, had_partition, copy.deepcopy(old)))
            shard = table.stream_shard
            if shard is not None and id(shard) not in shards:
                shards[id(shard)] = (shard, len(shard.items))
        return cls(saved, list(shards.values()))

    def apply(self) -> None:
        for saved in reversed(self.saved):  # an item named twice ends as it was before the first
            items = saved.table.items
            if saved.range_value is None:
                if saved.item is None:
                    items.pop(saved.hash_value, None)
                else:
                    items[saved.hash_value] = saved.item
                continue
            if saved.item is not None:
                items[saved.hash_value][saved.range_value] = saved.item
                continue
            partition = items.get(saved.hash_value)
            if partition is not None:
                partition.pop(saved.range_value, None)
                if not partition and not saved.had_partition:
                    del items[saved.hash_value]
        for shard, length in self.stream_lengths:
            del shard.items[length:]
