"""A real daemon in a simulated room: its own voice comes back into the microphone (issue 21).

Real engines, the real echo path (``ReferencedSink`` → ``RoomSource`` → the default linear canceller →
listener, with the self-wake guard), as ``edge-voice run --input X.wav --room R.toml`` wires it. The daemon
says its start-up greeting first (``audio.echo_greeting``: the canceller learns the room on it, note 302);
then a reply is spoken with a ``SayCommand`` (a long announcement that starts before the user speaks)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_voice.audio import clips
from edge_voice.audio.echo import CancelledSource, Room
from edge_voice.audio.sinks import WavSink
from edge_voice.audio.sources import InputClock, WavSource
from edge_voice.core.messages import SAMPLE_RATE, SayCommand
from edge_voice.core.vocabulary import EventType
from edge_voice.integrations.sinks import MemorySink
from edge_voice.runtime import echo_path
from edge_voice.runtime.daemon import Daemon, Engines
from tests.conftest import ENGINES_CFG, wait_until
from tests.integration.rig import Rig, running

pytestmark = pytest.mark.engines

LONG_REPLY = (
    "Here is a short story. Once upon a time a small robot lived in a lighthouse by the sea. Every night "
    "it counted the ships, and every morning it wrote their names in a large blue book. One winter a storm "
    "came, and the robot kept the light burning all night long."
)
WAKE_REPLY = (
    "My name is Jarvis. To wake me, say hey Jarvis, and then your question. Hey Jarvis, hey Jarvis. "
    "When you say hey Jarvis I stop talking and listen to you."
)


def _greeted(rig: Rig) -> None:
    """The start-up greeting played to its end (the first reply), and the canceller learned the room."""
    wait_until(lambda: bool(rig.memory.of(EventType.RESPONSE_DONE)), 60, "the greeting played")
    first = rig.memory.of(EventType.RESPONSE_DONE)[0].data
    assert first.get("status") == "done" and first.get("reply") == rig.daemon.cfg.audio.echo_greeting, first
    cancelled = rig.daemon.echo.cancelled if rig.daemon.echo is not None else None
    # the canceller's own verdict over the greeting's last 3 s: it is cancelling (not a missing or misaligned
    # reference); how well the first reply's barge-ins then work is bench echo's "linear_greeting"
    assert cancelled is not None and cancelled.erle_db is not None
    assert cancelled.erle_db >= CancelledSource.LOW_ERLE_DB, cancelled.erle_db


def _rig(engines: Engines, pcm: np.ndarray, out: Path, room: Room, cancel: str = "on") -> Rig:
    import threading

    from edge_voice.listen.wake import OpenWakeWordDetector

    cfg = replace(ENGINES_CFG, audio=replace(ENGINES_CFG.audio, echo_cancel=cancel))
    clock = InputClock()
    wav = WavSink(out, clock, engines.tts.sample_rate)
    echo = echo_path.build(
        cfg, WavSource(pcm, pace="realtime", clock=clock), wav, room, lambda: OpenWakeWordDetector(cfg.wake)
    )
    ready = threading.Event()
    daemon = Daemon(cfg, engines, echo.source, echo.sink, [], clock, on_ready=ready.set, echo=echo)
    memory = MemorySink()
    daemon.orch.out.sinks.append(memory)
    return Rig(daemon, wav, memory, [], ready)


def _types(memory: MemorySink) -> list[str]:
    return [f"{e.type} {dict(e.data)}"[:160] for e in memory.events]


@pytest.mark.xfail(
    strict=False,
    reason="issue 21: whisper under load after a detected barge-in (design notes 148, 195): in session 15 "
    "the user's wake word was detected and the reply stopped in 4 of 4 runs after the greeting; one run "
    "failed when whisper.cpp could not encode the command ('failed to encode') at nice 19 on a loaded box",
)
def test_barge_in_over_a_loud_reply_stops_it_and_the_command_is_answered(
    engines: Engines, tmp_path: Path
) -> None:
    # The greeting plays first (~6.5 s from ~1–3 s on), the reply after it, ~17 s long. The user speaks at
    # 18 s, 5 dB above the echo (Piper's reply is about -22 dBFS; the room returns it at 0 dB).
    user = np.concatenate(
        [
            clips.espeak_speech("hey jarvis", "en-gb"),
            clips.silence(300),
            clips.espeak_speech("what time is it", "en-gb"),
        ]
    )
    voiced = np.abs(user) > 300
    gain = 10 ** (-17 / 20) * 32768 / float(np.sqrt(np.mean(user[voiced].astype(np.float64) ** 2)))
    at = 18 * SAMPLE_RATE
    pcm = np.zeros(at + len(user) + 6 * SAMPLE_RATE, np.int16)
    pcm[at : at + len(user)] = np.clip(user * gain, -32768, 32767).astype(np.int16)
    rig = _rig(engines, pcm, tmp_path / "out.wav", Room(delay_ms=45, echo_gain_db=0.0, seed=3))
    with running(rig):
        _greeted(rig)
        rig.daemon.turn_loop.post(SayCommand(LONG_REPLY))
        try:
            wait_until(
                lambda: any(
                    e.type == EventType.RESPONSE_DONE and "time" in str(e.data.get("transcript", "")).lower()
                    for e in rig.memory.events
                ),
                60,
                "the command answered",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_types(rig.memory)}") from None
    wakes = rig.memory.of(EventType.WAKE_DETECTED)
    assert wakes, _types(rig.memory)
    wake_at = int(wakes[0].data["at_sample"])
    assert at <= wake_at <= at + 2 * SAMPLE_RATE  # the user's wake word, not the reply
    done = rig.memory.of(EventType.RESPONSE_DONE)
    assert done[1].data.get("status") == "interrupted", [e.data for e in done]
    start, end = rig.sink.replies[1]
    assert start < wake_at < end  # the reply was playing when the user spoke, and was cut short
    # (how fast it stops is the bench's business: no timed asserts on a shared box)


def test_a_reply_that_says_the_wake_word_does_not_wake_the_device(engines: Engines, tmp_path: Path) -> None:
    pcm = np.zeros(30 * SAMPLE_RATE, np.int16)
    rig = _rig(engines, pcm, tmp_path / "out.wav", Room(delay_ms=40, echo_gain_db=6.0, seed=4))
    listener = rig.daemon.listen.listener
    # the daemon gave the listener the reference: this reply is heard with wake.playback_patience
    assert getattr(listener, "follows_playback", False)
    with running(rig):
        _greeted(rig)
        rig.daemon.turn_loop.post(SayCommand(WAKE_REPLY))
        wait_until(lambda: len(rig.memory.of(EventType.RESPONSE_DONE)) > 1, 60, "the reply played")
    assert not rig.memory.of(EventType.WAKE_DETECTED), _types(rig.memory)
    assert rig.memory.of(EventType.RESPONSE_DONE)[1].data.get("status") != "interrupted"
