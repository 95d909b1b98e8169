"""The turn-taking bench's scoring, on event lists written by hand (the shapes of core/events.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from edge_voice.bench.turn_taking import (
    ClipSpec,
    PlacedClip,
    acted_pairs,
    apply_overrides,
    events_by_clip,
    make_specs,
    score_clip,
    slot_devices,
    split_blocks,
    summarize,
)
from edge_voice.core.config import Config

TWO_PART = ClipSpec(
    "00-two_part",
    "two_part",
    ("turn on the kitchen light", "and turn off the fan."),
    (600,),
    (("turn_on", "kitchen light"), ("turn_off", "fan")),
    "piper:1.0",
)
SPANS = ((16000, 32000), (41600, 56000))  # part 1, 600 ms of silence, part 2


def turn(
    tid: int, start: int, stop: int, text: str, name: str | None, slots: dict[str, Any], **kw: Any
) -> list[dict[str, Any]]:
    evs: list[dict[str, Any]] = [
        {"type": "input_audio.speech_started", "turn_id": tid, "at_sample": start + 2400},
        {
            "type": "input_audio.speech_stopped",
            "turn_id": tid,
            "last_voiced_sample": stop,
            "reason": kw.get("reason", "silence"),
        },
        {"type": "transcript.final", "turn_id": tid, "text": text},
    ]
    if name is not None:
        evs.append({"type": "intent.recognized", "turn_id": tid, "name": name, "slots": slots, "text": text})
    evs.append(
        {
            "type": "response.done",
            "turn_id": tid,
            "status": "done",
            "route": "intent" if name else "llm",
            "reply": kw.get("reply", "Turning."),
            "latency": {"voice_to_voice_ms": kw.get("v2v", 300.0)},
        }
    )
    return evs


def test_slot_devices_takes_a_string_or_a_list() -> None:
    assert slot_devices({"device": "Kitchen Light", "kind": "light"}) == ["kitchen light"]
    assert slot_devices({"device": ["kitchen light", "fan"]}) == ["kitchen light", "fan"]
    assert slot_devices({"kind": "light"}) == []
    evs = [
        {"type": "intent.recognized", "name": "turn_on", "slots": {"device": ["kitchen light", "fan"]}},
        {"type": "intent.recognized", "name": "time", "slots": {}},
        {"type": "intent.recognized", "name": "unknown_device", "slots": {"device": "telly"}},
    ]
    assert acted_pairs(evs) == [("turn_on", "kitchen light"), ("turn_on", "fan")]


def test_a_second_part_nobody_heard_is_lost() -> None:
    evs = turn(
        1,
        16000,
        32000,
        "Turn on the kitchen light.",
        "turn_on",
        {"device": "kitchen light"},
        reason="early_commit",
    )
    row = score_clip(TWO_PART, SPANS, evs)
    assert (row["parts_expected"], row["parts_acted"]) == (2, 1)
    assert row["lost_parts"] == [1] and row["wrong_actions"] == [] and row["false_cut_off"] is None
    assert row["voice_to_voice_ms"] == [("intent", 300.0)]


def test_a_continuation_turn_acts_on_the_second_part() -> None:
    evs = turn(1, 16000, 32000, "Turn on the kitchen light.", "turn_on", {"device": "kitchen light"})
    evs += turn(2, 41600, 56000, "And turn off the fan.", "turn_off", {"device": ["fan"]})
    row = score_clip(TWO_PART, SPANS, evs)
    assert (row["parts_acted"], row["lost_parts"], row["duplicate_actions"]) == (2, [], 0)


def test_a_reply_that_names_both_devices_counts_as_confirmed() -> None:
    one_slot = turn(
        1,
        16000,
        56000,
        "turn on the kitchen light and the fan",
        "turn_on",
        {"device": "fan"},
        reply="Turning on the kitchen light and the fan.",
    )
    spec = ClipSpec(
        "x",
        "two_part",
        ("turn on the kitchen light", "and the fan."),
        (300,),
        (("turn_on", "kitchen light"), ("turn_on", "fan")),
        "piper:1.0",
    )
    row = score_clip(spec, SPANS, one_slot)
    assert (row["parts_acted"], row["parts_confirmed"]) == (1, 2)  # the payload kept only the last device


def test_wrong_duplicate_and_clarify_are_counted() -> None:
    evs = turn(
        1,
        16000,
        56000,
        "turn on the kitchen light and turn off the fan",
        "turn_on",
        {"device": ["kitchen light", "hallway light"]},
    )
    evs += turn(2, 41600, 56000, "and turn on the kitchen light", "turn_on", {"device": "kitchen light"})
    evs += turn(3, 41600, 56000, "and turn off the fun", "clarify", {}, reply="Which fan?")
    row = score_clip(TWO_PART, SPANS, evs)
    assert row["parts_acted"] == 1
    assert row["wrong_actions"] == [["turn_on", "hallway light"]]
    assert row["duplicate_actions"] == 1 and row["clarifications"] == 1
    # a "Which …" reply without a clarify intent counts too, once
    evs2 = turn(
        1, 16000, 56000, "turn off the light", None, {}, reply="Which light, the hallway or the bedroom?"
    )
    assert score_clip(TWO_PART, SPANS, evs2)["clarifications"] == 1


def test_a_transcript_with_the_words_is_not_lost_without_speech_events() -> None:
    evs = [
        {"type": "transcript.final", "turn_id": 1, "text": "turn on the kitchen light and turn off the fan"}
    ]
    assert score_clip(TWO_PART, SPANS, evs)["lost_parts"] == []


COMPLETE = ClipSpec(
    "40-complete",
    "complete",
    ("turn off the lights", "in the bedroom."),
    (300,),
    (("turn_off", "bedroom light"),),
    "espeak:en-us",
)
C_SPANS = ((16000, 30000), (34800, 44000))


def test_a_commit_at_the_inner_pause_is_a_false_cut_off() -> None:
    cut = turn(
        1, 16000, 30000, "Turn off the lights.", "turn_off", {"device": "all lights"}, reason="early_commit"
    )
    row = score_clip(COMPLETE, C_SPANS, cut)
    assert row["false_cut_off"] is True and row["wrong_actions"] == [["turn_off", "all lights"]]
    assert row["lost_parts"] == [1]
    whole = turn(
        1, 16000, 44000, "Turn off the lights in the bedroom.", "turn_off", {"device": "bedroom light"}
    )
    row = score_clip(COMPLETE, C_SPANS, whole)
    assert row["false_cut_off"] is False and row["parts_acted"] == 1
    # one sentence over two transcribed turns is cut off too, even if the second turn fixes it
    split = turn(1, 16000, 44000, "Turn off the lights", None, {}) + turn(
        2, 34800, 44000, "in the bedroom", None, {}
    )
    assert score_clip(COMPLETE, C_SPANS, split)["false_cut_off"] is True
    assert score_clip(COMPLETE, C_SPANS, split)["cut_off_repaired"] is False  # nothing acted on
    fixed = turn(1, 16000, 30000, "Turn off the lights", None, {}, reason="early_commit")
    fixed += turn(2, 34800, 44000, "in the bedroom", "turn_off", {"device": ["bedroom light"]})
    row = score_clip(COMPLETE, C_SPANS, fixed)
    assert row["false_cut_off"] is True and row["cut_off_repaired"] is True
    assert summarize([row])["false_cut_offs_unrepaired"] == 0


def test_summary_and_events_by_clip() -> None:
    a = PlacedClip(TWO_PART, 0, 100000, SPANS)
    b = PlacedClip(COMPLETE, 100000, 200000, tuple((s + 100000, e + 100000) for s, e in C_SPANS))
    evs = [{"type": "wake.detected", "turn_id": 1, "at_sample": 1000}, *turn(1, 16000, 32000, "x", None, {})]
    evs += [
        {"type": "wake.detected", "turn_id": 7, "at_sample": 100500},
        {"type": "turn.cancelled", "turn_id": 7, "reason": "no_speech"},
    ]
    evs += [{"type": "engine.fallback", "turn_id": None}]
    per = events_by_clip(evs, [a, b])
    assert {e["turn_id"] for e in per[0]} == {1} and [e["type"] for e in per[1]] == [
        "wake.detected",
        "turn.cancelled",
    ]
    rows = [score_clip(TWO_PART, SPANS, per[0]), score_clip(b.spec, b.spans, per[1])]
    s = summarize(rows)
    assert (s["parts_expected"], s["parts_acted"], s["lost_parts"]) == (3, 0, 3)
    assert s["complete_sentences"] == 1 and s["false_cut_offs"] == 0
    assert s["llm_routes_in_command_clips"] == 1 and s["command_voice_to_voice_ms_p50"] is None


def test_overrides_apply_only_keys_the_config_has() -> None:
    cfg, applied, skipped = apply_overrides(
        Config(), {"endpoint.silence_end_ms": 600, "endpoint.no_such_key": 1, "nosection.x": 2}
    )
    assert cfg.endpoint.silence_end_ms == 600 and applied == {"endpoint.silence_end_ms": 600}
    assert skipped == ["endpoint.no_such_key", "nosection.x"]


def test_the_clip_set_is_seeded_and_covers_the_brief() -> None:
    specs = make_specs()
    assert specs == make_specs() and specs != make_specs(seed=7)
    cmds = [s for s in specs if s.kind not in ("complete", "question") and not s.noisy]
    assert len(cmds) >= 40
    assert {p for s in cmds for p in s.pauses_ms} >= {150, 300, 600, 900, 1300}
    assert Counter(s.n_devices for s in cmds).keys() == {1, 2, 3}
    assert len({s.voice for s in cmds}) >= 4 and any(s.noisy for s in specs)
    assert all(max(s.pauses_ms) <= 300 for s in specs if s.kind == "complete")


def test_saved_events_split_into_session_blocks() -> None:
    tagged = [{"type": "wake.detected", "turn_id": 1, "block": 0}, {"type": "x", "turn_id": 2, "block": 1}]
    assert {k: len(v) for k, v in split_blocks(tagged).items()} == {0: 1, 1: 1}
    untagged = [
        {"type": "wake.detected", "turn_id": 1, "at_sample": 16000},
        {"type": "response.done", "turn_id": 1},
        {"type": "wake.detected", "turn_id": 2, "at_sample": 400000},
        {"type": "wake.detected", "turn_id": 3, "at_sample": 16000},  # the next session's daemon
        {"type": "input_audio.speech_stopped", "turn_id": 3, "last_voiced_sample": 40000},
    ]
    assert {k: [e["turn_id"] for e in v] for k, v in split_blocks(untagged).items()} == {
        0: [1, 1, 2],
        1: [3, 3],
    }


def test_stage_p50_takes_heard_replies_of_the_route() -> None:
    evs = turn(1, 16000, 32000, "turn on the kitchen light", "turn_on", {"device": "kitchen light"})
    evs[-1]["latency"] = {"voice_to_voice_ms": 280.0, "asr_ms": 230.0, "decode_start_ms": 32.0, "x": None}
    evs += turn(2, 41600, 56000, "and turn off the fan", "turn_off", {"device": "fan"}, v2v=320.0)
    evs[-1]["latency"]["asr_ms"] = 250.0
    evs[-1]["status"] = "cancelled"  # not heard: left out
    s = summarize([score_clip(TWO_PART, SPANS, evs)])
    assert s["command_stages_ms_p50"] == {
        "asr_ms": 230.0,
        "decode_start_ms": 32.0,
        "voice_to_voice_ms": 280.0,
    }
    assert s["llm_stages_ms_p50"] == {}
