"""``edge-voice bench answers`` end to end on three questions: the real rules and SmolLM2 through
``Asker.ask``, both variants, JSON and PNG written (~15 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_voice.bench import answers
from edge_voice.core.config import Config

pytestmark = pytest.mark.engines


def test_bench_answers_runs_three_questions_through_both_variants(tmp_path: Path) -> None:
    summary = answers.run(Config(), tmp_path, limit=3, cats="geography,offline,misheard")
    result = json.loads((tmp_path / "answers.json").read_text())
    assert (tmp_path / "answers.png").stat().st_size > 10_000
    assert summary["set"]["questions"] == 3 and set(summary) >= {"baseline", "new"}
    assert [r["category"] for r in result["rows"]] == ["geography", "offline", "misheard"]
    for row in result["rows"]:
        for v in ("baseline", "new"):
            got = row[v]
            assert got["score"] in ("correct", "declined", "wrong", "foreign", "invented")
            assert got["route"] in ("intent", "llm") and got["total_ms"] > 0
            if got["route"] == "llm":
                assert got["reply"] and got["llm_ttft_ms"] is not None
    for v in ("baseline", "new"):
        res = result["results"][v]
        assert res["overall"]["n"] == 3
        assert set(res["targets"]) == {k for k, *_ in answers.TARGETS}
    # the baseline asks the LLM; the new path answers these three before it (a skill, a boundary, the rules)
    assert result["results"]["baseline"]["timings"]["llm"]["llm_ttft_ms"]["n"] >= 1
    assert [r["new"]["route"] for r in result["rows"]] == ["intent", "intent", "intent"]
    assert result["variants"]["baseline"]["llm"]["system_prompt"] == answers.BASELINE_LLM["system_prompt"]
    assert result["rss_mb_after"] > 0
    # a rescore reads the same file back and keeps every reply
    answers.run(Config(), tmp_path, rescore=1)
    again = json.loads((tmp_path / "answers.json").read_text())
    assert again["rescored"] and [r["new"]["reply"] for r in again["rows"]] == [
        r["new"]["reply"] for r in result["rows"]
    ]
