"""The decode's part of the latency breakdown (``Turn.latency``): when the committed attempt's audio went
to the ASR thread, and how long it waited there behind other work. Marks set by hand, no clock."""

from __future__ import annotations

from edge_voice.core.turns import Mark, Turn
from edge_voice.core.vocabulary import Latency

MS = 1_000_000


def test_an_early_decode_that_queued_behind_a_cancelled_one() -> None:
    turn = Turn(1, "wake", 0, t0_ns=1000 * MS)
    dropped = turn.new_attempt(100)  # a dip inside the speech: decoded, then cancelled
    dropped.cancel.cancel("speech_resumed")
    a = turn.new_attempt(200, 1000 * MS)
    a.marks[Mark.ASR_START] = 1032 * MS  # the early decode: 32 ms after the acoustic end
    a.marks[Mark.TRANSCRIPT] = 1300 * MS
    a.asr_ms = 230.0
    a.committed = True
    turn.mark(Mark.COMMITTED, 1300 * MS)
    lat = turn.latency()
    assert lat[Latency.DECODE_START] == 32.0
    assert lat[Latency.ASR_WAIT] == 38.0  # 268 ms from hand-over to transcript, 230 of them decoding
    assert lat[Latency.ENDPOINT] == 300.0


def test_no_decode_no_decode_figures() -> None:
    turn = Turn(1, "wake", 0, t0_ns=0)
    lat = turn.latency()
    assert lat[Latency.DECODE_START] is None and lat[Latency.ASR_WAIT] is None
    a = turn.new_attempt(0)
    a.committed = True
    a.marks[Mark.ASR_START] = 5 * MS  # handed over, no transcript yet (cancelled, timed out)
    assert turn.latency()[Latency.ASR_WAIT] is None


def test_a_decode_reported_longer_than_its_round_trip_waits_zero() -> None:
    turn = Turn(1, "wake", 0, t0_ns=0)
    a = turn.new_attempt(0)
    a.committed = True
    a.marks[Mark.ASR_START], a.marks[Mark.TRANSCRIPT], a.asr_ms = 0, 200 * MS, 201.5
    assert turn.latency()[Latency.ASR_WAIT] == 0.0
