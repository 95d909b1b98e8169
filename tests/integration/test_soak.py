"""Issue 8, short soak in the suite: 60 scenes (commands, questions, silence, noise, barge-ins, follow-ups)
through the real daemon; no crash, no stuck turn, memory / descriptors / threads flat after warm-up.

Latency drift is a speed figure: it is measured by `edge-voice bench soak` (JSON + PNG), not asserted here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_voice.bench.soak import soak
from edge_voice.config import AsrConfig, Config

pytestmark = pytest.mark.engines


def test_short_soak_keeps_every_invariant() -> None:
    cfg = Config(asr=AsrConfig(max_decode_ms=20000))  # a shared box: no load-induced empty transcripts
    cfg = replace(cfg, tts=replace(cfg.tts, deterministic=True))
    r = soak(cfg, turns=60)
    kinds = r["scene_kinds"]
    assert not r["crash"] and r["stuck_turns"] == 0, r
    assert r["errors"] == [], r["errors"]
    # every spoken scene opened a turn that ended: commands, questions, follow-ups answered (two turns
    # each, the second without a wake word), barge-ins interrupted
    spoken = kinds["command"] + kinds["question"] + kinds["barge_in"] + 2 * kinds["follow_up"]
    assert r["turns_ended"] >= spoken, (r["statuses"], kinds)
    assert r["statuses"].get("interrupted", 0) >= kinds["barge_in"], r["statuses"]
    assert r["statuses"].get("done", 0) >= kinds["command"] + kinds["question"]
    assert r["invariants"]["rss_growth_below_5pct"], (r["rss_mb_after_warmup"], r["rss_mb_end"])
    assert r["invariants"]["fds_stable"], r["fds"]
    assert max(r["threads"][1:]) - min(r["threads"][1:]) <= 1, r["threads"]
