"""A real daemon on a WAV source with its home sinks attached exactly as ``edge-voice run`` does
(``daemon.attach_home``), run on a background thread: shared by the home and fault tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

from edge_voice.audio import clips
from edge_voice.audio.sinks import AudioSink, WavSink
from edge_voice.audio.sources import AudioSource, InputClock, WavSource
from edge_voice.audio.wavio import read_wav_16k
from edge_voice.cli.run import attach_home
from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import Config, GpioConfig
from edge_voice.core.messages import Pcm
from edge_voice.integrations.home_sinks import MqttEventSink
from edge_voice.integrations.sinks import MemorySink
from edge_voice.runtime.daemon import Daemon, Engines
from tests.conftest import ENGINES_CFG, wait_until

DEVICE = "test-room"
PREFIX = f"edge-voice/{DEVICE}"
LED_PIN, BUTTON_PIN = 12, 17
T = TypeVar("T")
# The machine is shared: a competing process made whisper.cpp's 3 s decode budget abort ("time") on one
# second of speech (measured: 350 ms alone, 3.5 s under load). These tests are about the home wiring, not
# ASR speed (the bench measures that), so the budget is generous here. The voice is deterministic: with
# Piper's noise a reply sounds different on every run, and whisper tiny once heard "belondry" for "laundry".
# The shared engines are loaded with the same settings (ENGINES_CFG); this is the daemons' config.
BASE = replace(ENGINES_CFG, device_id=DEVICE)


# ------------------------------------------------------------------------------------------- helpers


def home_cfg(
    port: int | None = None, gpio: GpioConfig | None = None, no_speech_timeout_ms: int = 0
) -> Config:
    cfg = BASE
    if port is not None:
        mqtt = replace(cfg.mqtt, enabled=True, host="127.0.0.1", port=port, keepalive_s=5)
        cfg = replace(cfg, mqtt=mqtt)
    if gpio is not None:
        cfg = replace(cfg, gpio=gpio)
    if no_speech_timeout_ms:
        cfg = replace(cfg, endpoint=replace(cfg.endpoint, no_speech_timeout_ms=no_speech_timeout_ms))
    return cfg


@dataclass
class Rig:
    """A daemon on a WAV source with its home sinks attached (as ``edge-voice run`` does)."""

    daemon: Daemon
    sink: WavSink
    memory: MemorySink
    stops: list[Callable[[], None]]
    ready: threading.Event

    def home(self, kind: type[T]) -> T:
        return next(s for s in self.daemon.orch.out.sinks if isinstance(s, kind))

    def stop_home(self) -> None:
        for stop in self.stops:  # idempotent: a second call (in a finally) does nothing
            stop()

    def heard(self, engines: Engines, i: int) -> str:
        """Reply ``i`` transcribed back with our own ASR (call after the daemon stopped)."""
        self.sink.save()
        return heard_back(engines, self.sink, i)


def heard_back(engines: Engines, sink: WavSink, i: int = 0) -> str:
    """Reply ``i`` of a saved ``sink`` transcribed with our own ASR, lower-case. 300 ms of lead silence is
    prepended, as a listener would have: whisper drops a first word that starts at sample 0."""
    start, end = sink.replies[i]
    reply = read_wav_16k(sink.path)[start:end]
    return engines.asr.transcribe(np.concatenate([clips.silence(300), reply]), CancelToken()).text.lower()


def build(
    cfg: Config,
    engines: Engines,
    pcm: Pcm,
    pace: Literal["realtime", "adaptive"],
    out: Path,
    wrap_source: Callable[[AudioSource], AudioSource] | None = None,
    wrap_sink: Callable[[WavSink], AudioSink] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Rig:
    """``wrap_source``/``wrap_sink`` inject faults around the real WAV source and sink (the reopen of a
    lost source returns the same wrapped object)."""
    clock = InputClock()
    source: AudioSource = WavSource(pcm, pace=pace, clock=clock)
    if wrap_source is not None:
        source = wrap_source(source)
    wav = WavSink(out, clock, engines.tts.sample_rate)
    sink: AudioSink = wrap_sink(wav) if wrap_sink is not None else wav
    ready = threading.Event()

    def ready_now() -> None:
        if on_ready is not None:
            on_ready()
        ready.set()

    reopen = (lambda: source) if wrap_source is not None else None
    daemon = Daemon(cfg, engines, source, sink, [], clock, on_ready=ready_now, reopen_source=reopen)
    stops = attach_home(cfg, daemon)
    # last in line: once it has a state, the MQTT and GPIO sinks have handled that state too
    memory = MemorySink()
    daemon.orch.out.sinks.append(memory)
    return Rig(daemon, wav, memory, stops, ready)


def quiet(seconds: int) -> Pcm:
    """A room with nobody talking (a -60 dBFS noise floor)."""
    return clips.compose([("quiet", clips.silence(seconds * 1000))]).pcm


@contextmanager
def running(rig: Rig) -> Iterator[None]:
    """The daemon on a background thread until the block ends (a realtime source never runs out first)."""
    errors: list[BaseException] = []

    def main() -> None:
        try:
            rig.daemon.run()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=main, name="test-daemon", daemon=True)
    thread.start()
    try:
        wait_until(lambda: rig.ready.is_set() or not thread.is_alive(), 120, "daemon ready")
        assert rig.ready.is_set(), f"daemon ended during start-up: {errors!r}"
        yield
    finally:
        rig.daemon.stop()
        thread.join(30)
    assert not thread.is_alive(), "daemon did not stop"
    assert not errors, errors


@contextmanager
def mqtt_turn(cfg: Config, engines: Engines, pcm: Pcm, out: Path) -> Iterator[Rig]:
    """The daemon through ``pcm`` (paced "adaptive": it stops when the file ends) with its MQTT bridge
    connected first and flushed after. The block runs before the home sinks stop, while the broker (and
    Home Assistant) still see the device online; the rig stays usable after it."""
    rig = build(cfg, engines, pcm, "adaptive", out)
    bridge = rig.home(MqttEventSink).bridge
    try:
        wait_until(lambda: bridge.connected, 15, "bridge connected")
        rig.daemon.run()
        assert bridge.flush(15), f"bridge did not flush: {bridge.stats()}"
        yield rig
    finally:
        rig.stop_home()
