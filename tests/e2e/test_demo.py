"""`make demo`, the first thing a new user runs: every turn answered, and answered right — or a failure
they cannot miss (exit 1 naming the turn)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_voice.cli.demo import DEMO_TURNS, check_turns


def _done(status: str, reply: str) -> dict[str, object]:
    return {"status": status, "reply": reply, "transcript": "…"}


def test_the_demo_check_names_a_wrong_or_failed_turn() -> None:
    right = [_done("done", "Turning on the kitchen light."), _done("done", "The capital of France is Paris.")]
    assert check_turns(right) == []
    (wrong,) = check_turns([right[0], _done("done", "Lyon is the capital of France.")])
    assert "turn 2" in wrong and "paris" in wrong
    (failed,) = check_turns([right[0], _done("error", "")])
    assert "turn 2" in failed and "'error'" in failed
    (missing,) = check_turns(right[:1])
    assert "2 turns spoken, 1 ended" in missing
    assert check_turns([_done("done", "Turning on the kitchen lights."), right[1]])  # whole words only


@pytest.mark.engines
def test_make_demo_answers_every_turn_right(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "edge_voice", "demo", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    rows = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    done = [row for row in rows if row["type"] == "response.done"]
    assert len(done) == len(DEMO_TURNS) and all(d["status"] == "done" for d in done)
    assert "paris" in done[1]["reply"].lower()
    assert "transcribed back" in r.stdout and (tmp_path / "reply.wav").stat().st_size > 0
