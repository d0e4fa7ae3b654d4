"""``python -m localdev serve`` as a developer runs it: up in seconds, answering, and gone on Ctrl-C."""

from __future__ import annotations

import signal

from tools.bench_local_startup import health, serving


def test_serve_comes_up_answers_health_and_stops_cleanly_on_ctrl_c() -> None:
    with serving() as served:
        assert health(served.port)["status"] == "ok"
    assert served.exit_code == 0


def test_serve_stops_in_order_on_sigterm_and_says_its_state_is_gone() -> None:
    # Given `python -m localdev serve` up on a free loopback port; when it gets SIGTERM
    with serving(signal.SIGTERM) as served:
        assert health(served.port)["status"] == "ok"
    rest = served.output
    process_exit = served.exit_code

    # Then it stopped cleanly, saying so
    assert process_exit == 0
    assert "State (tables, queues, mail) lives in memory: it is gone when the runner stops." in rest
    assert "stopping: new requests get 503" in rest
    assert "stopped; its tables, queues and mail are gone" in rest
