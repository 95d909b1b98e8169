"""The endpointer is a pure sample-counting state machine: every offset below is exact."""

from __future__ import annotations

import pytest

from edge_voice.core.config import EndpointConfig
from edge_voice.listen.endpoint import (
    Endpointer,
    EndpointEvent,
    EndpointSamples,
    Paused,
    Resumed,
    Started,
    Stopped,
    TimedOut,
)

F = 512  # one silero frame
# Defaults of EndpointConfig in samples at 16 kHz
PRE, MIN, END, SPEC, MAX, TIMEOUT, TAIL = 4800, 2400, 8000, 3200, 240000, 64000, 4800


def ceil_frames(samples: int) -> int:
    """Samples until the first frame end at or after ``samples`` (events fire at block ends)."""
    return -(-samples // F) * F


def make(origin: int = 0, **over: int) -> Endpointer:
    values = dict(
        pre_roll=PRE,
        min_speech=MIN,
        silence_end=END,
        speculative_silence=SPEC,
        settle_silence=SPEC,
        max_utterance=MAX,
        no_speech_timeout=TIMEOUT,
        wake_tail=TAIL,
    )
    values.update(over)
    return Endpointer(EndpointSamples(**values), start_sample=origin)


def feed(ep: Endpointer, pattern: str, n: int = F) -> list[EndpointEvent]:
    """'#' = a voiced block, '.' = an unvoiced block, each ``n`` samples."""
    out: list[EndpointEvent] = []
    for ch in pattern:
        out.extend(ep.feed(ch == "#", n))
    return out


def silence(ep: Endpointer, frames: int) -> list[EndpointEvent]:
    return feed(ep, "." * frames)


def voice(ep: Endpointer, frames: int) -> list[EndpointEvent]:
    return feed(ep, "#" * frames)


# ------------------------------------------------------------------------------------------ config


def test_config_is_converted_to_samples() -> None:
    s = EndpointSamples.from_config(EndpointConfig(speculative_silence_ms=SPEC * 1000 // 16000))
    assert (s.pre_roll, s.min_speech, s.silence_end, s.speculative_silence) == (PRE, MIN, END, SPEC)
    assert (s.max_utterance, s.no_speech_timeout, s.wake_tail) == (MAX, TIMEOUT, TAIL)
    s8 = EndpointSamples.from_config(EndpointConfig(silence_end_ms=400, min_speech_ms=0), rate_hz=8000)
    assert (s8.silence_end, s8.min_speech) == (3200, 0)


def test_endpointer_accepts_the_config_section_directly() -> None:
    ep = Endpointer(EndpointConfig(min_speech_ms=0))
    ep.open()
    assert ep.feed(True, F) == [Started(0, 0, F)]


def test_empty_or_negative_block_is_an_error() -> None:
    ep = make()
    with pytest.raises(ValueError):
        ep.feed(True, 0)
    with pytest.raises(ValueError):
        ep.feed(False, -5)


# ------------------------------------------------------------------------------------------ closed


def test_closed_ignores_speech_but_keeps_the_position() -> None:
    ep = make()
    assert ep.state == "closed" and not ep.is_open
    assert voice(ep, 100) == [] and silence(ep, 100) == []
    assert ep.position == 200 * F
    assert not ep.in_speech


def test_close_drops_the_utterance_silently() -> None:
    ep = make()
    ep.open()
    assert [type(e) for e in voice(ep, 10)] == [Started]
    ep.close()
    assert feed(ep, "." * 40 + "#" * 40 + "." * 200) == []
    assert ep.state == "closed"


def test_reopen_restarts_listening_without_an_event() -> None:
    ep = make()
    ep.open()
    voice(ep, 10)
    ep.open()  # e.g. a second wake word: the new utterance starts fresh
    assert ep.state == "open"
    silence(ep, 4)
    ev = voice(ep, 5)
    assert ev == [Started(14 * F, 14 * F - PRE, 19 * F)]


# ---------------------------------------------------------------------------------------- starting


def test_speech_starts_after_min_speech_at_the_first_voiced_sample() -> None:
    ep = make()
    ep.open()
    silence(ep, 20)
    assert voice(ep, 4) == []  # 2048 < 2400 samples
    ev = voice(ep, 1)
    assert ev == [Started(20 * F, 20 * F - PRE, 25 * F)]
    assert ep.in_speech


def test_blips_shorter_than_min_speech_are_ignored() -> None:
    ep = make()
    ep.open()
    assert feed(ep, "..#..##..###..####..") == []
    assert ep.state == "open"
    ev = feed(ep, "#####")
    assert ev == [Started(20 * F, 20 * F - PRE, 25 * F)]  # the real run, not the blips before it


def test_min_speech_zero_starts_on_the_first_voiced_block() -> None:
    ep = make(min_speech=0)
    ep.open()
    silence(ep, 3)
    assert feed(ep, "#") == [Started(3 * F, 0, 4 * F)]


def test_exact_offsets_with_one_sample_blocks() -> None:
    ep = make()
    ep.open()
    events = feed(ep, "." * 10000, n=1) + feed(ep, "#" * 20000, n=1) + feed(ep, "." * 9000, n=1)
    assert events == [
        Started(10000, 10000 - PRE, 10000 + MIN),
        Paused(10000 - PRE, 10000, 30000, 30000 + SPEC),
        Stopped("silence", 10000 - PRE, 10000, 30000, 30000 + END),
    ]


def test_a_long_block_decides_at_its_end() -> None:
    ep = make()
    ep.open()
    assert ep.feed(True, 10 * F) == [Started(0, 0, 10 * F)]
    # one block long enough for both the speculative pause and the endpoint: both, in order
    assert ep.feed(False, 20 * F) == [
        Paused(0, 0, 10 * F, 30 * F),
        Stopped("silence", 0, 0, 10 * F, 30 * F),
    ]


# ---------------------------------------------------------------------------------------- pre-roll


def test_pre_roll_may_reach_before_a_manual_open() -> None:
    ep = make()
    silence(ep, 100)
    ep.open()  # push-to-talk at 100 frames: speech starts immediately
    ev = voice(ep, 5)
    assert ev == [Started(100 * F, 100 * F - PRE, 105 * F)]


def test_pre_roll_is_bounded_by_the_floor() -> None:
    ep = make()
    silence(ep, 100)
    ep.open(floor_sample=100 * F)  # a wake word ended here: keep it out of the utterance
    silence(ep, 3)
    ev = voice(ep, 5)
    assert ev == [Started(103 * F, 100 * F, 108 * F)]
    silence(ep, 20)
    ep.open(floor_sample=ep.position - 2 * F)
    silence(ep, 20)
    ev = voice(ep, 5)
    assert isinstance(ev[0], Started) and ev[0].audio_start == ev[0].speech_start - PRE


def test_pre_roll_is_bounded_by_the_start_of_the_stream() -> None:
    ep = make(origin=50_000)
    ep.open()
    silence(ep, 2)
    ev = voice(ep, 5)
    assert ev == [Started(50_000 + 2 * F, 50_000, 50_000 + 7 * F)]


def test_no_pre_roll() -> None:
    ep = make(pre_roll=0)
    ep.open()
    silence(ep, 20)
    assert voice(ep, 5) == [Started(20 * F, 20 * F, 25 * F)]


def test_speech_cannot_start_before_the_floor() -> None:
    ep = make()
    silence(ep, 10)
    ep.open(floor_sample=10 * F + 100)  # the wake hop ended inside the next VAD frame
    ev = voice(ep, 5)
    assert ev == [Started(10 * F + 100, 10 * F + 100, 15 * F)]


# -------------------------------------------------------------------------------- pauses and stops


def test_pause_shorter_than_silence_end_does_not_end_the_utterance() -> None:
    ep = make(speculative_silence=0)
    ep.open()
    ev = voice(ep, 20) + silence(ep, 15) + voice(ep, 20)  # 15 frames = 7680 < 8000 samples
    assert [type(e) for e in ev] == [Started]
    ev = silence(ep, 15)
    assert ev == []
    ev = silence(ep, 1)
    assert ev == [Stopped("silence", 0, 0, 55 * F, 71 * F)]
    assert ep.state == "closed"


def test_speculative_pause_then_resume_then_stop() -> None:
    ep = make()
    ep.open()
    voice(ep, 20)
    spec_frames = ceil_frames(SPEC) // F  # 7 frames
    assert silence(ep, spec_frames - 1) == []
    assert silence(ep, 1) == [Paused(0, 0, 20 * F, 20 * F + ceil_frames(SPEC))]
    assert silence(ep, 5) == []  # once per pause
    resume_at = ep.position + F
    assert voice(ep, 1) == [Resumed(resume_at)]
    assert voice(ep, 10) == []
    last = ep.position
    ev = silence(ep, ceil_frames(END) // F)
    assert ev == [
        Paused(0, 0, last, last + ceil_frames(SPEC)),
        Stopped("silence", 0, 0, last, last + ceil_frames(END)),
    ]


def test_an_early_pause_then_settled_once_per_pause() -> None:
    """The decode starts at 2 frames of silence; a complete command may end the turn at 5."""
    ep = make(speculative_silence=2 * F, settle_silence=5 * F)
    ep.open()
    voice(ep, 20)
    assert silence(ep, 1) == []
    assert silence(ep, 1) == [Paused(0, 0, 20 * F, 22 * F, settled=False)]
    assert silence(ep, 2) == []
    assert silence(ep, 1) == [Paused(0, 0, 20 * F, 25 * F, settled=True)]
    assert silence(ep, 5) == []
    assert voice(ep, 1) == [Resumed(31 * F)]
    silence(ep, 2)
    assert voice(ep, 1) == [Resumed(34 * F)]  # an early pause that never settled is withdrawn too
    # one block across both: a single, settled pause
    assert ep.feed(False, 6 * F) == [Paused(0, 0, 34 * F, 40 * F, settled=True)]


def test_commit_silence_is_converted_and_never_below_the_speculative_pause() -> None:
    s = EndpointSamples.from_config(EndpointConfig(speculative_silence_ms=64, commit_silence_ms=160))
    assert (s.speculative_silence, s.settle_silence) == (1024, 2560)
    s = EndpointSamples.from_config(EndpointConfig(speculative_silence_ms=200, commit_silence_ms=160))
    assert s.settle_silence == 3200


def test_no_pause_events_when_speculation_is_off() -> None:
    ep = make(speculative_silence=0)
    ep.open()
    ev = feed(ep, "#" * 20 + "." * 10 + "#" * 5 + "." * 16)
    assert [type(e) for e in ev] == [Started, Stopped]


def test_silence_is_counted_from_the_end_of_the_last_voiced_block() -> None:
    ep = make()
    ep.open()
    ev = feed(ep, "#" * 10 + "." * 3 + "#" + "." * 16)
    assert ev[-1] == Stopped("silence", 0, 0, 14 * F, 30 * F)


def test_speech_after_the_stop_is_ignored_until_reopened() -> None:
    ep = make()
    ep.open()
    ev = feed(ep, "#" * 10 + "." * 16)
    assert isinstance(ev[-1], Stopped)
    assert feed(ep, "#" * 30 + "." * 30) == []
    ep.open()
    assert [type(e) for e in feed(ep, "#" * 10)] == [Started]


def test_max_length_stops_continuous_speech() -> None:
    ep = make(max_utterance=100 * F)
    ep.open()
    silence(ep, 40)
    ev = voice(ep, 99)
    assert [type(e) for e in ev] == [Started]
    ev = voice(ep, 5)
    assert ev == [Stopped("max_length", 40 * F - PRE, 40 * F, 140 * F, 140 * F)]
    assert ep.state == "closed"
    assert voice(ep, 300) == []


def test_max_length_counts_pauses_too() -> None:
    ep = make(max_utterance=60 * F, speculative_silence=0)
    ep.open()
    ev = feed(ep, ("#" * 10 + "." * 10) * 4)
    stops = [e for e in ev if isinstance(e, Stopped)]
    assert stops == [Stopped("max_length", 0, 0, 50 * F, 60 * F)]


def test_max_length_exactly_at_min_speech() -> None:
    ep = make(max_utterance=5 * F, min_speech=5 * F)
    ep.open()
    assert voice(ep, 5) == [Started(0, 0, 5 * F), Stopped("max_length", 0, 0, 5 * F, 5 * F)]


# --------------------------------------------------------------------------------------- no speech


def test_no_speech_times_out_and_closes() -> None:
    ep = make()
    silence(ep, 7)
    ep.open()
    frames = ceil_frames(TIMEOUT) // F
    assert silence(ep, frames - 1) == []
    assert silence(ep, 1) == [TimedOut(7 * F + ceil_frames(TIMEOUT))]
    assert ep.state == "closed"
    assert voice(ep, 20) == []


def test_blips_do_not_keep_the_listener_open() -> None:
    ep = make()
    ep.open()
    ev = feed(ep, ("#" + "." * 9) * 13)  # 130 frames > 125 frames of timeout
    assert ev == [TimedOut(ceil_frames(TIMEOUT))]


def test_a_blip_at_the_timeout_defers_it_by_its_length() -> None:
    ep = make()
    ep.open()
    frames = ceil_frames(TIMEOUT) // F
    assert feed(ep, "." * (frames - 1) + "##") == []
    assert silence(ep, 1) == [TimedOut((frames + 2) * F)]


def test_a_run_in_progress_at_the_timeout_may_still_start_speech() -> None:
    ep = make()
    ep.open()
    frames = ceil_frames(TIMEOUT) // F
    silence(ep, frames - 2)
    ev = voice(ep, 5)  # crosses the timeout while voiced
    assert ev == [Started((frames - 2) * F, (frames - 2) * F - PRE, (frames + 3) * F)]


def test_a_failed_run_after_the_timeout_times_out_at_once() -> None:
    ep = make()
    ep.open()
    frames = ceil_frames(TIMEOUT) // F
    silence(ep, frames - 2)
    assert voice(ep, 3) == []
    assert silence(ep, 1) == [TimedOut((frames + 2) * F)]


def test_no_timeout_once_speech_started() -> None:
    ep = make(speculative_silence=0)
    ep.open()
    ev = feed(ep, ("#" * 10 + "." * 14) * 10)  # 240 frames, well past the timeout
    assert [type(e) for e in ev] == [Started]


# ------------------------------------------------------------------------ wake phrase carried over


def test_voice_carried_over_from_the_wake_phrase_is_not_the_utterance() -> None:
    ep = make()
    voice(ep, 30)  # the wake phrase (closed: ignored)
    w = ep.position + 200
    ep.open(floor_sample=w, voiced_since=w)
    assert voice(ep, 3) == []  # the rest of "...jarvis"
    assert silence(ep, 4) == []  # the phrase ends
    ev = voice(ep, 5)  # the command
    assert ev == [Started(37 * F, w, 42 * F)]


def test_voice_running_on_after_the_wake_is_speech_from_the_wake_sample() -> None:
    ep = make()
    voice(ep, 30)
    w = ep.position
    ep.open(floor_sample=w, voiced_since=w)
    assert voice(ep, ceil_frames(TAIL) // F - 1) == []  # min_speech alone would have started it
    ev = voice(ep, 1)
    assert ev == [Started(w, w, w + ceil_frames(TAIL))]


def test_a_carried_run_needs_at_least_min_speech() -> None:
    ep = make(wake_tail=0)
    voice(ep, 10)
    ep.open(floor_sample=ep.position, voiced_since=ep.position)
    assert voice(ep, 4) == []
    assert voice(ep, 1) == [Started(10 * F, 10 * F, 15 * F)]


def test_after_a_broken_carry_the_next_run_needs_only_min_speech() -> None:
    ep = make()
    voice(ep, 10)
    ep.open(floor_sample=10 * F, voiced_since=10 * F)
    feed(ep, "##.")
    assert voice(ep, 5) == [Started(13 * F, 10 * F, 18 * F)]


# ----------------------------------------------------------------------------- a whole turn, twice


def test_two_utterances_with_reopen_between() -> None:
    ep = make()
    events: list[EndpointEvent] = []
    for _ in range(2):
        silence(ep, 10)
        ep.open(floor_sample=ep.position)
        events += feed(ep, "." * 5 + "#" * 30 + "." * 4 + "#" * 20 + "." * 20)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Started", "Paused", "Stopped"] * 2
    first, second = events[0], events[3]
    assert isinstance(first, Started) and isinstance(second, Started)
    assert first.speech_start == 15 * F and second.speech_start == (89 + 15) * F
    stop = events[5]
    assert isinstance(stop, Stopped) and stop.last_voiced == (89 + 69) * F


# ------------------------------------------------------------------- carrying on after a commit


def test_carry_on_in_a_pause_makes_the_next_words_a_new_utterance() -> None:
    ep = make()
    ep.open()
    voice(ep, 20)  # 0 … 10240
    silence(ep, 8)  # a pause: the turn is committed on it
    assert ep.carry_on(10240 + 8 * F) == []
    assert ep.state == "open"
    silence(ep, 4)
    (st,) = [e for e in voice(ep, 6) if isinstance(e, Started)]
    onset = 10240 + 12 * F
    assert st.speech_start == onset and st.audio_start == onset - PRE >= 10240  # not the committed words
    (stop,) = [e for e in silence(ep, 20) if isinstance(e, Stopped)]
    assert stop.speech_start == onset and stop.audio_start == onset - PRE


def test_carry_on_after_the_voice_came_back_starts_that_utterance_at_its_onset() -> None:
    """The commit raced the resumption: the words already said after the pause are kept."""
    ep = make()
    ep.open()
    voice(ep, 20)
    silence(ep, 8)
    after = ep.position  # where the commit was decided
    silence(ep, 2)
    voice(ep, 3)  # the user goes on before the request reaches the listen thread
    (st,) = ep.carry_on(after)
    assert isinstance(st, Started) and st.speech_start == after + 2 * F
    assert st.audio_start == max(after + 2 * F - PRE, 20 * F)
    (stop,) = [e for e in silence(ep, 20) if isinstance(e, Stopped)]
    assert stop.speech_start == after + 2 * F


def test_carry_on_after_the_stop_listens_again_from_the_committed_words() -> None:
    ep = make()
    ep.open()
    voice(ep, 20)
    (stop,) = [e for e in silence(ep, 20) if isinstance(e, Stopped)]
    voice(ep, 2)  # voice comes back just before the request arrives
    assert ep.carry_on(stop.at) == []
    (st,) = [e for e in voice(ep, 4) if isinstance(e, Started)]
    assert st.speech_start == stop.at + 4 * F + (ceil_frames(stop.at) - stop.at)
    assert st.audio_start >= 20 * F  # never the committed words


def test_carry_on_after_a_whole_continuation_was_said_keeps_it() -> None:
    """The commit came after the user had said all of the continuation (a slow decode: "turn on the
    kitchen light ⟨600⟩ and turn off the fan" lost its second half with no event at all, session 15)."""
    ep = make()
    ep.open()
    voice(ep, 20)
    (stop,) = [e for e in silence(ep, 20) if isinstance(e, Stopped)]
    onset = ep.position + 2 * F
    silence(ep, 2)
    voice(ep, 10)  # "and turn off
    silence(ep, 3)
    voice(ep, 6)  # the fan"
    last = ep.position
    silence(ep, 4)  # … and quiet again, all before the request reaches the listen thread
    (st,) = ep.carry_on(stop.at)
    assert isinstance(st, Started) and st.speech_start == onset
    assert st.audio_start == max(onset - PRE, stop.last_voiced) >= 20 * F  # never the committed words
    (end,) = [e for e in silence(ep, 20) if isinstance(e, Stopped)]
    assert (end.speech_start, end.last_voiced) == (onset, last)


def test_carry_on_ignores_a_blip_and_what_came_before_the_commit() -> None:
    ep = make()
    ep.open()
    voice(ep, 20)
    (stop,) = [e for e in silence(ep, 20) if isinstance(e, Stopped)]
    voice(ep, 2)  # a blip shorter than min_speech
    silence(ep, 4)
    assert ep.carry_on(stop.at) == [] and ep.state == "open"
    (st,) = [e for e in voice(ep, 6) if isinstance(e, Started)]
    assert st.speech_start > stop.at + 6 * F - F


def test_carry_on_times_out_like_an_open() -> None:
    ep = make()
    ep.open()
    voice(ep, 20)
    (stop,) = [e for e in silence(ep, 20) if isinstance(e, Stopped)]
    ep.carry_on(stop.at, timeout=10 * F)
    assert isinstance(silence(ep, 10)[-1], TimedOut) and not ep.is_open


def test_a_pause_that_reaches_the_question_silence_is_reported_once_more() -> None:
    ep = make(speculative_silence=2 * F, settle_silence=5 * F, question_silence=12 * F)
    ep.open()
    voice(ep, 20)
    assert silence(ep, 12) == [
        Paused(0, 0, 20 * F, 22 * F, settled=False),
        Paused(0, 0, 20 * F, 25 * F, settled=True),
        Paused(0, 0, 20 * F, 32 * F, settled=True, question=True),
    ]
    assert silence(ep, 2) == []
    assert voice(ep, 1) == [Resumed(35 * F)]
    assert silence(ep, 12)[-1] == Paused(0, 0, 35 * F, 47 * F, settled=True, question=True)
    # converted from ms; at or past the endpoint it would never come first: off
    s = EndpointSamples.from_config(EndpointConfig(question_commit_silence_ms=400))
    assert s.question_silence == 6400
    assert EndpointSamples.from_config(EndpointConfig(question_commit_silence_ms=500)).question_silence == 0
