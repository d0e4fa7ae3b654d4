"""The cost model's arithmetic (tools/bench/cost.py): what scales with appointments, what does not."""

from __future__ import annotations

from tools.bench import cost
from tools.bench.call_budgets import BUDGETS

SIZES = cost.Sizes({"appointment": 1.9, "history": 0.6, "mail": 0.3, "small": 0.15}, "test")
FACTS = cost.template_facts()
MEMORY_GB = FACTS.memory_mb / 1024


def variable_and_fixed() -> tuple[cost.Tally, cost.Tally]:
    cpu = cost.cpu_model({}, FACTS.memory_mb)
    _, variable = cost.per_appointment({}, cpu, SIZES, MEMORY_GB)
    fixed = cost.fixed_month(FACTS, {}, cpu, MEMORY_GB)
    return variable, fixed


def stack_usd(appointments: float) -> float:
    variable, fixed = variable_and_fixed()
    console = cost.console_month(0, SIZES, cost.cpu_model({}, FACTS.memory_mb), MEMORY_GB)
    return float(cost.bill(appointments, variable, fixed, console, SIZES)["total_usd"])


def test_doubling_the_appointments_doubles_the_variable_cost() -> None:
    fixed_only = stack_usd(0)

    once, twice = stack_usd(10_000) - fixed_only, stack_usd(20_000) - fixed_only

    assert once > 0
    assert abs(twice - 2 * once) < 1e-9 * twice + 1e-6  # X-Ray's reservoir is not reached at this volume


def test_the_per_minute_sweep_costs_the_same_whatever_the_volume() -> None:
    _, fixed = variable_and_fixed()

    assert fixed.quantity["lambda_request"] == cost.MINUTES_PER_MONTH
    assert fixed.quantity["scheduler_invocation"] == cost.MINUTES_PER_MONTH
    # Each run queries every shard of the due index: half a read unit each (keys only, eventually consistent).
    assert (
        fixed.quantity["dynamodb_rru"] == cost.MINUTES_PER_MONTH * BUDGETS["sweep.nothing_due"]["dynamodb.Query"] * 0.5
    )


def test_a_transaction_costs_two_write_units_per_kb_and_each_index_write_one() -> None:
    step = cost.Step("booking applied", "EventProcessorFunction", "event.new_booking", 1)

    units = cost.write_units(step, {"dynamodb.TransactWriteItems": 1}, SIZES)

    # appointment 2 KB, history, ref, ticket link, mail: 6 KB-units, twice; by_day 2, due 1 + the mail's 1.
    assert units == 2 * 6 + 2 + 1 + 1


def test_billed_duration_is_own_cpu_plus_each_call_s_latency() -> None:
    cpu = cost.CpuModel({"WebhookIngressFunction": 2.0}, "test", share=0.5)
    step = cost.Step("webhook", "WebhookIngressFunction", "webhook.generic", 1)

    ms = cost.billed_ms(step, {"sqs.SendMessageBatch": 1}, cpu)

    assert ms == 2.0 / 0.5 + cost.a("ms_sqs")


def test_measured_calls_replace_the_budgets() -> None:
    measured = {"webhook.generic": {"sqs.SendMessageBatch": 2}}
    step = cost.Step("webhook", "WebhookIngressFunction", "webhook.generic", 1)

    assert cost.step_calls(step, measured) == {"sqs.SendMessageBatch": 2}
    assert cost.step_calls(step, {}) == {"sqs.SendMessageBatch": 1}


def test_run_takes_partial_measurements_and_says_where_each_figure_came_from() -> None:
    warm = {"operations": {"ingress": {"handler_ms": {"p50": 9.0}, "limit_ms": {"p50": 4.0}}}}

    result = cost.run(measured={"warm": warm, "sizes": {"appointment_item_bytes": 2000}})

    assert result["inputs"]["cpu_local_ms"] == {"WebhookIngressFunction": 5.0}
    assert result["inputs"]["cpu"].startswith("measured")
    assert result["inputs"]["calls"].startswith("budgets")
    assert result["monthly"]["1000000"]["total_usd"] > result["monthly"]["1000"]["total_usd"]
    assert cost.markdown(result).startswith("## Cost model")
