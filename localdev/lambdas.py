"""Functions loaded the way Lambda finds them (the template's CodeUri and Handler), and their context."""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from localdev.resources import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from localdev.template import FunctionSpec

Handler = Callable[[dict[str, Any], Any], Any]


class LambdaContext:
    """What Lambda passes as ``context``: the remaining time counts down from the function's Timeout."""

    def __init__(
        self,
        function_name: str,
        *,
        timeout_seconds: int,
        memory_mb: int = 128,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self._monotonic = monotonic
        self._deadline = monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._monotonic()) * 1000))


def context_for(spec: FunctionSpec) -> LambdaContext:
    return LambdaContext(spec.logical_id, timeout_seconds=spec.timeout, memory_mb=spec.memory_mb)


def load_handler(spec: FunctionSpec) -> Handler:
    """Import ``<CodeUri>/<module>.py`` under a name of its own (every function's module is ``app``)."""
    module_file, _, attribute = spec.handler.rpartition(".")
    path = spec.code_uri / f"{module_file}.py"
    module_spec = importlib.util.spec_from_file_location(f"fn_{spec.logical_id}", path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"{spec.logical_id}: cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    handler: Handler = getattr(module, attribute)
    return handler
