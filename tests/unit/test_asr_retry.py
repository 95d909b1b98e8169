"""The decode retry (``decode_with_retry``): a decode out of time is retried once, on one thread, with a
limit scaled to the utterance — always, not only under ``service.adapt_to_load``."""

from __future__ import annotations

from edge_voice.core.config import AsrConfig
from edge_voice.engines.asr import decode_with_retry
from edge_voice.engines.base import AbortReason

CFG = AsrConfig(max_decode_ms=3000)


class Passes:
    """A fake ``run(limit_ms, threads)``: each call gives the next outcome and is recorded."""

    def __init__(self, *outcomes: AbortReason) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[int, int]] = []

    def __call__(self, limit_ms: int, threads: int) -> tuple[str, int, AbortReason]:
        self.calls.append((limit_ms, threads))
        reason = self.outcomes.pop(0)
        return ("" if reason else "turn on the fan"), 7, reason


def test_a_decode_out_of_time_is_retried_once_on_one_thread_with_a_limit_scaled_to_the_utterance() -> None:
    run = Passes("time", "")
    raw, steps, aborted, threads, retried = decode_with_retry(run, CFG, audio_ms=4000, threads=3)
    assert run.calls == [(3000, 3), (3000 + 4000, 1)]
    assert (raw, steps, aborted, threads, retried) == ("turn on the fan", 7, "", 1, True)


def test_a_decode_in_time_is_not_retried() -> None:
    run = Passes("")
    assert decode_with_retry(run, CFG, audio_ms=2000, threads=2) == ("turn on the fan", 7, "", 2, False)
    assert run.calls == [(3000, 2)]


def test_cancelled_and_runaway_decodes_are_not_retried() -> None:
    for reason in ("cancelled", "tokens"):
        run = Passes(reason)
        assert decode_with_retry(run, CFG, audio_ms=2000, threads=2)[2:] == (reason, 2, False)
        assert len(run.calls) == 1


def test_a_retry_that_runs_out_too_ends_there() -> None:
    run = Passes("time", "time")  # a third pass would be unbounded in total: there is none
    raw, _, aborted, threads, retried = decode_with_retry(run, CFG, audio_ms=2000, threads=2)
    assert (raw, aborted, threads, retried) == ("", "time", 1, True) and len(run.calls) == 2


def test_the_retry_can_be_turned_off_for_tests_of_the_bare_limit() -> None:
    run = Passes("time")
    assert decode_with_retry(run, CFG, audio_ms=2000, threads=2, retry=False)[2:] == ("time", 2, False)


def test_the_retry_is_announced_with_its_limit_before_it_runs() -> None:
    """``on_retry`` (the ASR worker moves its deadline) is told once, before the second pass, and not at
    all when there is no retry."""
    run = Passes("time", "")
    told: list[tuple[int, int]] = []
    decode_with_retry(
        run, CFG, audio_ms=4000, threads=2, on_retry=lambda ms: told.append((ms, len(run.calls)))
    )
    assert told == [(7000, 1)]  # after the first pass, before the second
    run = Passes("")
    decode_with_retry(run, CFG, audio_ms=4000, threads=2, on_retry=lambda ms: told.append((ms, 0)))
    assert told == [(7000, 1)]
