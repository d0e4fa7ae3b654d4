"""``python -m localdev serve`` as a developer runs it: up in seconds, answering, and gone on Ctrl-C."""

from __future__ import annotations

from tools.bench_local_startup import health, serving


def test_serve_comes_up_answers_health_and_stops_cleanly_on_ctrl_c() -> None:
    with serving() as served:
        assert health(served.port)["status"] == "ok"
    assert served.exit_code == 0
