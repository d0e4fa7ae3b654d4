"""``python -m localdev demo`` against an in-process runner: every step accepted, every booking there."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from localdev.__main__ import DEMO_STORY, main
from localdev.template import TEMPLATE
from tests.local.conftest import OPS_TOKEN, running

if TYPE_CHECKING:
    import pytest

EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_demo_sends_the_story_in_order_and_the_appointments_exist(capsys: pytest.CaptureFixture[str]) -> None:
    with running(TEMPLATE, background=True) as local:
        assert main(["demo", "--url", local.base]) == 0
        output = capsys.readouterr().out
        steps = re.findall(r"^(\d+)\. .* → (\d+)$", output, flags=re.MULTILINE)
        assert steps == [(str(number), "202") for number in range(1, len(DEMO_STORY) + 1)], output
        assert output.count("look: curl") == len(DEMO_STORY)

        auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
        found = {}
        for _, _, external_id in DEMO_STORY:
            items = local.get(f"/appointments?external_id={external_id}", headers=auth).json()["items"]
            assert len(items) == 1, external_id
            found[external_id] = items[0]
        tomorrow = (local.now() + timedelta(days=1)).date().isoformat()
        assert found["generic:stf-982"]["start"] == f"{tomorrow}T18:00:00Z"  # the sample's 18:00, tomorrow
        assert found["calendly:7c1e4b9a-2f3d-4a86-8e50-b3d9f6a21c47"]["status"] == "cancelled"


def test_send_moves_the_sample_to_tomorrow_unless_as_is(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with running(TEMPLATE, background=True) as local:
        monkeypatch.setenv("LOCALDEV_URL", local.base)  # no --url: the harness's way to a runner on another port
        assert main(["send", str(EVENTS / "generic" / "appointment_scheduled_unassigned.json")]) == 0
        assert main(["send", "--as-is", str(EVENTS / "generic" / "appointment_scheduled.json")]) == 0
        assert capsys.readouterr().out.count("→ 202") == 2
        local.post("/_local/settle")
        auth = {"Authorization": f"Bearer {OPS_TOKEN}"}
        starts = {
            ref: local.get(f"/appointments?external_id={ref}", headers=auth).json()["items"][0]["start"]
            for ref in ("generic:stf-982", "generic:stf-981")
        }
        # The runner's date is 2026-11-23 (START): moved, the 18:00 booking is tomorrow; as it is, today.
        assert starts == {"generic:stf-982": "2026-11-24T18:00:00Z", "generic:stf-981": "2026-11-23T15:00:00Z"}
