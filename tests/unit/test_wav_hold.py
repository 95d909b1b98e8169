"""``WavSource(hold_at=…)``: the simulated user waits for the device's answer before speaking again."""

from __future__ import annotations

import threading

import numpy as np

from edge_voice.audio.sources import InputClock, SourceExhausted, WavSource


def test_the_input_is_not_read_past_a_hold_while_a_turn_is_live() -> None:
    clock = InputClock()
    src = WavSource(np.arange(4000, dtype=np.int16), pace="fast", clock=clock, hold_at=[2500])
    assert src.read(1000)[0] == 0 and src.read(1000)[0] == 1000  # before the hold: read freely
    clock.realtime.set()  # a turn is being answered
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.append(int(src.read(1000)[0])))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and not got  # the block reaching 2500 waits for the answer
    clock.realtime.clear()  # the turn ended
    reader.join(2)
    assert got == [2000] and src.held_s >= 0.25
    clock.realtime.set()
    assert src.read(1000)[0] == 3000  # a hold is passed once


def test_no_turn_live_no_wait() -> None:
    clock = InputClock()
    src = WavSource(np.zeros(4000, np.int16), pace="fast", clock=clock, hold_at=[100, 2000])
    for _ in range(4):
        src.read(1000)
    assert src.held_s < 0.05


def test_a_hold_at_the_end_keeps_the_input_open_until_the_last_answer() -> None:
    clock = InputClock()  # the end of a file source cancels a live turn: the user waits for it first
    src = WavSource(np.zeros(2000, np.int16), pace="fast", clock=clock, hold_at=[2000])
    src.read(1000)
    src.read(1000)
    clock.realtime.set()
    ended: list[bool] = []

    def last() -> None:
        try:
            src.read(1000)
        except SourceExhausted:
            ended.append(True)

    reader = threading.Thread(target=last)
    reader.start()
    reader.join(0.3)
    assert reader.is_alive()
    clock.realtime.clear()
    reader.join(2)
    assert ended == [True]
