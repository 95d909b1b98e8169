"""Issue 8, short soak in the suite: 60 scenes (commands, questions, silence, noise, barge-ins, follow-ups)
through the real daemon; no crash, no stuck turn, no error, RSS growth < 5 % after warm-up, descriptors and
threads flat.

Latency drift is a speed figure: it is measured by `edge-voice bench soak` (JSON + PNG), not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# the longest test: `pytest -m "not slow"` leaves it out of a local run; `make test` (CI) always runs it
pytestmark = [pytest.mark.engines, pytest.mark.slow]


def test_short_soak_keeps_every_invariant(tmp_path: Path) -> None:
    # its own process: RSS must be the daemon's, not a pytest session's with other modules' engines
    subprocess.run(
        [sys.executable, "-m", "edge_voice", "bench", "soak", "--out", str(tmp_path), "--opt", "turns=60"],
        env={**os.environ, "EDGE_VOICE_TTS__DETERMINISTIC": "true"},
        check=True,
        capture_output=True,
        timeout=1200,
    )
    r = json.loads((tmp_path / "soak.json").read_text())
    kinds = r["scene_kinds"]
    assert not r["crash"] and r["stuck_turns"] == 0, r
    assert r["errors"] == [], r["errors"]
    # every spoken scene opened a turn that ended: commands, questions, follow-ups answered (two turns
    # each, the second without a wake word), barge-ins interrupted
    spoken = kinds["command"] + kinds["question"] + kinds["barge_in"] + 2 * kinds["follow_up"]
    assert r["turns_ended"] >= spoken, (r["statuses"], kinds)
    assert r["statuses"].get("interrupted", 0) >= kinds["barge_in"], r["statuses"]
    assert r["statuses"].get("done", 0) >= kinds["command"] + kinds["question"]
    assert r["invariants"]["rss_growth_below_5pct"], [x["rss_mb"] for x in r["samples"]]
    assert r["invariants"]["fds_stable"], r["fds"]
    assert max(r["threads"][1:]) - min(r["threads"][1:]) <= 1, r["threads"]
