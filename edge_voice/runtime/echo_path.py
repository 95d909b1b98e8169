"""Putting the echo path together: reference, simulated room, canceller and self-wake guard.

``audio.echo_cancel``: "on" (fail at start-up, exit 78, if the canceller cannot load), "off", or "auto":
on, unless the canceller's package is missing (a warning) or the input already is a sound server's
echo-cancelled source (PipeWire ``libpipewire-module-echo-cancel``, PulseAudio ``module-echo-cancel``):
cancelling twice only distorts the user's voice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from edge_voice.audio.echo import (
    CancelledSource,
    PlaybackReference,
    ReferencedSink,
    Room,
    RoomSource,
    canceller_available,
    make_canceller,
)

__all__ = ["EchoPath", "EchoSetupError", "build", "canceller_available", "choose_mode", "system_cancels"]
from edge_voice.audio.sinks import AudioSink
from edge_voice.audio.sources import AudioSource
from edge_voice.core.config import Config
from edge_voice.core.messages import Message, WakeDetected
from edge_voice.engines.base import WakeDetector
from edge_voice.listen.double_talk import NearLevels, NearTap
from edge_voice.listen.echo_guard import EchoGuard

log = logging.getLogger(__name__)

SYSTEM_AEC_NAMES = ("echo-cancel", "echo_cancel", "echocancel", "aec")


class EchoSetupError(RuntimeError):
    """``audio.echo_cancel = "on"`` but no canceller can be loaded."""


def system_cancels(input_device: str) -> bool:
    """The configured input is a sound server's echo-cancelled source (by its name)."""
    name = input_device.lower()
    return any(k in name for k in SYSTEM_AEC_NAMES)


@dataclass
class EchoPath:
    """What the daemon wires in: ``source``/``sink`` replace the plain ones."""

    source: AudioSource
    sink: AudioSink
    mode: str  # "process" (cancelling in process), "system" (the sound server does it), "off"
    cancelled: CancelledSource | None = None
    guard: EchoGuard | None = None
    reference: PlaybackReference | None = None
    near: NearLevels | None = None  # the raw microphone's levels, in front of the canceller

    def near_levels(self) -> NearLevels | None:
        """What the listener compares an utterance heard during playback with (``double_talk``): only
        when the echo is cancelled in process, as ``playing``."""
        return self.near if self.playing() is not None else None

    def playing(self) -> Callable[[int, int], bool] | None:
        """What the listener asks to know whether the device is talking (its wake gate while a reply
        plays, ``wake.playback_patience``): only when the echo is cancelled in process — the gate was
        measured with this canceller, not with a raw echo or a sound server's canceller."""
        if self.mode != "process" or self.reference is None:
            return None
        return self.reference.playing

    def greeting(self, cfg: Config) -> str | None:
        """What the device says once at start-up (``audio.echo_greeting``), or None: only when the echo is
        cancelled in process. The canceller starts cold and learns only while the device plays; ~5 s of
        its voice in the room make the first reply's barge-ins as reliable as the later ones (note 302)."""
        text = cfg.audio.echo_greeting.strip()
        if not text or self.mode != "process" or self.cancelled is None:
            return None
        return text

    def connect(self, post: Callable[[Message], None]) -> Callable[[Message], None]:
        """Status events go to ``post``; returns the listen thread's post, with the guard in front."""
        if self.cancelled is not None:
            self.cancelled.on_status = post
        guard = self.guard
        if guard is None:
            return post

        def guarded(msg: Message) -> None:
            if isinstance(msg, WakeDetected) and guard.is_echo(msg):
                return
            post(msg)

        return guarded


def choose_mode(cfg: Config) -> str:
    """``process``, ``system`` or ``off`` for this config; raises ``EchoSetupError`` for "on" without it."""
    want = cfg.audio.echo_cancel
    if want == "off":
        return "off"
    missing = canceller_available() if cfg.audio.echo_canceller == "webrtc" else None
    if want == "on":
        if missing is not None:
            raise EchoSetupError(f'audio.echo_cancel = "on" with echo_canceller = "webrtc": {missing}')
        return "process"
    if system_cancels(cfg.audio.input_device):
        log.info("echo: the input %r is already echo-cancelled by the sound server", cfg.audio.input_device)
        return "system"
    if missing is not None:
        log.warning("echo: no cancellation (%s)", missing)
        return "off"
    return "process"


def build(
    cfg: Config,
    source: AudioSource,
    sink: AudioSink,
    room: Room | None = None,
    guard_wake: Callable[[], WakeDetector] | None = None,
) -> EchoPath:
    """Wrap ``source`` and ``sink``. The room (WAV mode) echoes the reference into the source; the
    canceller and the guard read the same reference."""
    mode = choose_mode(cfg)
    if mode == "process" and room is None and not source.live:
        # a WAV input with no simulated room holds no echo: nothing to cancel, and with fast pacing the
        # reference is not aligned with the input, so the filter would learn from the user's own speech
        mode = "off"
    if mode != "process" and room is None and not (cfg.audio.echo_guard and mode == "off"):
        return EchoPath(source, sink, mode)
    reference = PlaybackReference()
    rsink = ReferencedSink(sink, reference)
    src: AudioSource = RoomSource(source, reference, room) if room is not None else source
    guard = None
    if cfg.audio.echo_guard and guard_wake is not None:
        guard = EchoGuard(guard_wake(), cfg.wake.threshold)
    kind = cfg.audio.echo_canceller
    canceller = make_canceller(kind, cfg.audio.echo_delay_ms) if mode == "process" else None
    near = NearLevels() if canceller is not None else None
    if near is not None:
        src = NearTap(src, near)
    cancelled = CancelledSource(src, reference, canceller, tap=guard.hear if guard else None)
    log.info("echo: %s%s%s", mode, ", simulated room" if room else "", ", self-wake guard" if guard else "")
    return EchoPath(cancelled, rsink, mode, cancelled, guard, reference, near)
