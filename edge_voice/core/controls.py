"""Device controls: commands (MQTT, the button, signals) and the audio source's lifecycle. They act on
the turn state machine only through its public methods, so the orchestrator itself stays the turn logic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from edge_voice.core import events as ev
from edge_voice.core.announcements import say
from edge_voice.core.messages import (
    BadCommand,
    CancelCommand,
    Command,
    EchoPathChanged,
    EngineFallback,
    ListenCommand,
    MuteCommand,
    ReloadConfig,
    SayCommand,
    Shutdown,
    SourceEnded,
    SourceEvent,
    SourceFailed,
    SourceRecovered,
    VolumeCommand,
)
from edge_voice.core.vocabulary import ErrorCode, Stage, State

if TYPE_CHECKING:
    from edge_voice.core.orchestrator import Orchestrator

Control = Command | SourceEvent | EngineFallback
CONTROLS = (
    ListenCommand,
    CancelCommand,
    SayCommand,
    MuteCommand,
    VolumeCommand,
    BadCommand,
    ReloadConfig,
    Shutdown,
    EngineFallback,
    SourceFailed,
    SourceRecovered,
    SourceEnded,
    EchoPathChanged,
)  # the members of Control, for isinstance


def handle_control(sm: Orchestrator, msg: Control) -> None:
    match msg:
        case ListenCommand():
            if sm.muted:
                sm.publish(ev.ErrorInfo(Stage.COMMAND, ErrorCode.MUTED, "listen ignored while muted"))
            else:
                sm.open_for_speech("button" if msg.source == "button" else "mqtt")
                sm.set_state(State.LISTENING)
        case CancelCommand():
            sm.cancel(msg.source)
        case SayCommand():
            say(sm, msg.text, trigger="announce" if msg.announce else "mqtt")
        case MuteCommand():
            _mute(sm, msg)
        case VolumeCommand():
            sm.w.playback.volume = max(0.0, min(1.0, msg.level))
            sm.publish(ev.VolumeInfo(sm.w.playback.volume))
        case BadCommand():
            info = ev.ErrorInfo(Stage.COMMAND, ErrorCode.BAD_COMMAND, msg.message, command=msg.name)
            sm.publish(info, sm.turn)
        case EngineFallback():
            sm.publish(ev.FallbackInfo.of(msg), sm.turn)
        case ReloadConfig():
            sm.supervisor.reload(sm)
        case Shutdown():
            sm.halt(0, "shutdown")
        case SourceFailed():
            sm.publish(ev.ErrorInfo.source(msg), sm.turn)
            sm.abandon("audio_failed")
            sm.set_state(State.ERROR)
            sm.stopping = sm.stopping or not msg.recoverable
        case SourceRecovered():
            sm.publish(ev.RecoveredInfo(msg.at_sample))
            if sm.turn is None:
                sm.rest_state()
        case EchoPathChanged():
            sm.publish(ev.EchoInfo(msg.cancelling, msg.reason, msg.erle_db))
        case SourceEnded():
            sm.source_ended = True
            if sm.turn is not None and sm.turn.committed is None:
                sm.abandon("source_ended")  # no more audio will come: nothing to listen to
            sm.stopping = sm.stopping or sm.turn is None
        case _:
            assert_never(msg)


PHYSICAL = ("button", "switch")


def _rank(source: str) -> int:
    """How firmly a mute holds: a remote one < the button's < the switch's."""
    return PHYSICAL.index(source) + 1 if source in PHYSICAL else 0


def _mute(sm: Orchestrator, msg: MuteCommand) -> None:
    """A physical mute (button hold, mute switch) is undone only physically: a switch's only by the
    switch. Over MQTT an unmute of it is refused with an ``error`` event and the mic stays closed."""
    on = msg.on
    if not on and sm.muted and _rank(msg.source) < _rank(sm.mute_source):
        text = f"unmute from {msg.source} refused: muted at the device ({sm.mute_source})"
        sm.publish(ev.ErrorInfo(Stage.COMMAND, ErrorCode.REFUSED, text, command="unmute"))
        return
    if on and sm.muted and _rank(msg.source) <= _rank(sm.mute_source):
        return  # muted already, as firmly: a remote mute must not weaken a physical one
    sm.muted = on
    sm.mute_source = msg.source if on else ""
    if on:
        sm.cancel("mute")
        sm.listen.close()
    sm.publish(ev.MuteInfo(on))
    if on or sm.turn is None:
        sm.set_state(State.MUTED if on else State.IDLE)
