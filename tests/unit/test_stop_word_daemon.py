"""The stop word in the daemon (issue 20 item 6): while the device speaks — a reply, a timer ringing — a
short utterance goes to the ASR and "stop" ends the turn, no wake word needed. The orchestrator is driven
synchronously with recording ports (tests/unit/test_orchestrator.py's rig); the listener with fake
detectors on sample counts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edge_voice.core.announcements import say
from edge_voice.core.config import Config
from edge_voice.core.jobs import AsrJob, Ctx, SpeakJob
from edge_voice.core.messages import (
    AudioChunk,
    AudioFrame,
    ListenEvent,
    PlaybackFinished,
    PlaybackStarted,
    ShortUtterance,
    Transcript,
)
from edge_voice.core.orchestrator import STOP_CHECK
from edge_voice.core.vocabulary import State
from edge_voice.listen.listener import Listener
from tests.unit.test_early_decode import NoWake, TrailingVad, quiet, voice
from tests.unit.test_orchestrator import Rig, cfg, started, wake

SHORT = ShortUtterance(np.zeros(12800, np.int16), 200000, 206400, 0)


def ringing(r: Rig) -> Ctx:
    """A timer rings: its phrase is synthesised and playing (SPEAKING)."""
    say(r.orch, "Your 5 minute timer is done.", trigger="timer")
    job = r.tts.of(SpeakJob)[-1]
    assert isinstance(job, SpeakJob)
    c = job.ctx
    r.send(AudioChunk(c.turn_id, c.attempt, 0, np.zeros(1600, np.int16), 16000, True, job.text))
    r.send(PlaybackStarted(c.turn_id, r.clock(), 40000))
    assert r.orch.state == State.SPEAKING
    return c


def check(r: Rig, text: str) -> AsrJob:
    job = r.asr.jobs[-1]
    assert isinstance(job, AsrJob) and job.ctx.attempt == STOP_CHECK
    r.send(Transcript(job.ctx.turn_id, STOP_CHECK, text, 800, 120.0))
    return job


def test_stop_said_while_a_timer_rings_ends_it_without_the_wake_word() -> None:
    r = Rig(cfg())
    c = ringing(r)
    assert r.listen.armed == [True]  # the stop word listens while the device speaks
    r.send(SHORT)
    job = check(r, "Stop.")
    assert len(job.audio) == len(SHORT.audio)
    assert r.data("turn.cancelled")["reason"] == "stop_word"
    assert c.cancel.cancelled  # the playback of the ringing phrase stops
    assert r.orch.turn is None and r.orch.state == State.IDLE
    assert r.listen.armed == [True, False]
    assert "wake.detected" not in r.types()
    r.send(PlaybackFinished(c.turn_id, "Your 5", True))  # the playback thread reports what was heard
    assert r.orch.turn is None


def test_stop_said_during_an_answer_ends_the_answer() -> None:
    r = Rig(cfg())
    r.answering("tell me a story about a fox", "Once upon a time a fox lived by the river.")
    r.send(SHORT)
    check(r, "stop it")
    assert r.data("turn.cancelled")["reason"] == "stop_word" and r.orch.turn is None


def test_anything_else_said_while_speaking_changes_nothing() -> None:
    r = Rig(cfg())
    c = ringing(r)
    for text in ("Start.", "", "Stop the music and play jazz.", "top"):
        r.send(SHORT)
        check(r, text)
    assert "turn.cancelled" not in r.types() and r.orch.state == State.SPEAKING
    assert not c.cancel.cancelled
    assert len(r.asr.jobs) == 4


def test_short_utterances_are_not_checked_unless_the_device_speaks() -> None:
    r = Rig(cfg())
    r.send(SHORT)  # idle
    r.send(wake(r.clock), started(r.clock))
    r.send(SHORT)  # listening to the user: the command itself goes through the turn, not the stop word
    assert r.asr.jobs == [] and r.listen.armed == []


def test_a_late_stop_check_never_ends_the_next_turn() -> None:
    r = Rig(cfg())
    c = ringing(r)
    r.send(SHORT)
    job = r.asr.jobs[-1]
    assert isinstance(job, AsrJob)
    r.send(PlaybackFinished(c.turn_id, "Your 5 minute timer is done.", False))  # it ended by itself
    assert r.orch.turn is None and r.listen.armed == [True, False]
    ringing(r)  # a second timer rings before the first check's words come back
    r.send(Transcript(job.ctx.turn_id, STOP_CHECK, "Stop.", 800, 120.0))
    assert "turn.cancelled" not in r.types() and r.orch.state == State.SPEAKING


def test_the_stop_word_off_by_config() -> None:
    base = cfg()
    r = Rig(replace(base, conversation=replace(base.conversation, stop_word=False)))
    ringing(r)
    assert r.listen.armed == [False]  # never armed (and disarmed if a reload turned it off)
    r.send(SHORT)
    assert r.asr.jobs == [] and r.orch.state == State.SPEAKING


def test_a_full_asr_queue_drops_the_check_not_the_turn() -> None:
    r = Rig(cfg())
    ringing(r)
    r.asr.full = True
    r.send(SHORT)
    assert "error" not in r.types() and "turn.cancelled" not in r.types()
    assert r.orch.state == State.SPEAKING


# ------------------------------------------------------------------------------------------ listener


def feed(listener: Listener, pcm: np.ndarray, at: int) -> list[ListenEvent]:
    out: list[ListenEvent] = []
    for i in range(0, len(pcm), 512):
        out += listener.feed(AudioFrame(pcm[i : i + 512], at + i, 0))
    return out


def test_the_listener_sends_short_utterances_only_while_armed() -> None:
    listener = Listener(Config(), NoWake(), TrailingVad())
    word = np.concatenate([quiet(512), voice(480), quiet(800)])
    pos = 0
    got = feed(listener, word, pos)
    pos += len(word)
    assert not [e for e in got if isinstance(e, ShortUtterance)]  # not armed
    listener.arm_stop(True)
    got = feed(listener, word, pos)
    short = [e for e in got if isinstance(e, ShortUtterance)]
    assert len(short) == 1
    s = short[0]
    assert pos + 512 * 16 <= s.start_sample + 512 * 16 and s.start_sample <= pos + 512 * 16
    assert s.end_sample - s.start_sample <= 1200 * 16
    assert len(s.audio) == s.end_sample - s.start_sample + 2 * 3200  # padded 200 ms each side
    pos += len(word)
    listener.arm_stop(False)
    assert not [e for e in feed(listener, word, pos) if isinstance(e, ShortUtterance)]


def test_a_voice_running_when_armed_is_not_a_short_utterance() -> None:
    listener = Listener(Config(), NoWake(), TrailingVad())
    feed(listener, np.concatenate([quiet(512), voice(512)]), 0)
    listener.arm_stop(True)  # armed mid-sentence (the device began to speak over the user)
    got = feed(listener, np.concatenate([voice(256, 1), quiet(800)]), 1024 * 16)
    assert not [e for e in got if isinstance(e, ShortUtterance)]


def test_a_reply_that_says_stop_is_not_ended_by_its_own_voice() -> None:
    """The device's own "stop" leaking through the canceller (bench stop, part=own) is not the user's: a
    reply that says the word is ended only by the wake word, the button or MQTT; another reply still is."""
    r = Rig(cfg())
    r.answering("can you stop the rain", "I can't stop the rain, but I can tell you the forecast.")
    r.send(SHORT)
    check(r, "Stop.")
    assert r.orch.turn is not None and r.orch.state == State.SPEAKING
    assert "turn.cancelled" not in r.types()
    off = Rig(replace(cfg(), audio=replace(Config().audio, echo_guard=False)))  # the guard's key
    off.answering("can you stop the rain", "I can't stop the rain, but I can tell you the forecast.")
    off.send(SHORT)
    check(off, "Stop.")
    assert off.data("turn.cancelled")["reason"] == "stop_word"


def test_a_ringing_timer_that_says_stop_in_its_phrase_is_guarded_too() -> None:
    r = Rig(cfg())
    say(r.orch, "Your timer is done. Say stop to end it.", trigger="timer")
    job = r.tts.of(SpeakJob)[-1]
    assert isinstance(job, SpeakJob)
    c = job.ctx
    r.send(AudioChunk(c.turn_id, c.attempt, 0, np.zeros(1600, np.int16), 16000, True, job.text))
    r.send(PlaybackStarted(c.turn_id, r.clock(), 40000))
    r.send(SHORT)
    check(r, "stop")
    assert r.orch.state == State.SPEAKING
