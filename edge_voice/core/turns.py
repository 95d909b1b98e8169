"""The Turn record (one per user interaction), its attempts, and its latency marks.

t0 is the end of the user's speech: the monotonic time the last voiced sample was captured. Every mark is
a monotonic ns time from the orchestrator's injected clock (or a thread's capture time); the breakdown
is computed from marks, never from log text. Only the orchestrator (and its latency recorder) writes a
Turn.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np

from edge_voice.core.cancel import CancelToken
from edge_voice.core.intent import IntentOutcome
from edge_voice.core.jobs import Ctx
from edge_voice.core.messages import SAMPLE_RATE, Pcm, SpeechStopped
from edge_voice.core.vocabulary import Latency

Trigger = Literal["wake", "button", "mqtt", "cli", "follow_up", "continuation", "say", "timer", "announce"]
Route = Literal["", "intent", "llm", "say"]

_ids = itertools.count(1)
MAX_HELD_GAP = (
    SAMPLE_RATE // 5
)  # longer: whisper hallucinates, or punctuates the pause ("capital of? France")


def next_turn_id() -> int:
    return next(_ids)


class Mark(StrEnum):
    """Latency marks. Turn-wide ones on ``Turn.marks``, per-attempt ones on ``Attempt.marks``."""

    WAKE = "wake"
    WAKE_ACK = "wake_ack"
    SPEECH_STARTED = "speech_started"
    COMMITTED = "committed"
    PLAYBACK_STARTED = "playback_started"
    ASR_START = "asr_start"
    TRANSCRIPT = "transcript"
    INTENT = "intent"
    REPLY_START = "reply_start"
    LLM_START = "llm_start"
    LLM_FIRST_TOKEN = "llm_first_token"
    FIRST_SENTENCE = "first_sentence"
    FIRST_AUDIO = "first_audio"
    LLM_DONE = "llm_done"
    SYNTH_DONE = "synth_done"


@dataclass(slots=True)
class Attempt:
    """One try at answering a turn: a speculative one (started in the end-of-speech silence, playback
    held until the endpoint is confirmed) or a final one. Cancelling it stops every engine working on it."""

    number: int
    last_voiced_sample: int
    t0_ns: int | None = None  # a speculative attempt's own end of speech
    after_sample: int = 0  # where the pause it was decided in was seen (the listener carries on from here)
    audio: Pcm | None = None  # what it decodes (with the turn's held words before it)
    audio_end: int = 0  # stream sample after ``audio``
    stop: SpeechStopped | None = None  # the endpoint came while it was decoding: committed on its words
    stop_ns: int = 0  # when that endpoint came
    asr_failed: bool = False  # its decode hit whisper's time limit: "" is the engine's failure, not silence
    cancel: CancelToken = field(default_factory=CancelToken)
    committed: bool = False
    settled: bool = False  # the pause it started in reached endpoint.commit_silence_ms
    question_settled: bool = False  # … and endpoint.question_commit_silence_ms
    transcript: str | None = None
    asr_ms: float | None = None
    audio_ms: int = 0
    matched: bool = False  # the intent matcher has seen the transcript (``intent`` is its answer)
    intent: IntentOutcome | None = None
    diverted: IntentOutcome | None = None  # the fast path's intent, handed to Home Assistant's agent instead
    reply_started: bool = False  # intent/LLM work handed out
    reply_text: str = ""  # a fast-path reply, the turn's once this attempt is committed
    prompt_user: str = ""  # the user message sent to the LLM (facts included), for prefix-stable history
    generated: str = ""  # GenerationDone.text: the LLM's text exactly as generated, for prefix-stable history
    streamed: str = ""  # the LLM's text so far (TextDelta): what the reply says before GenerationDone
    stopped: str = ""  # why generation stopped (GenerationDone.stopped)
    synthesized: bool = False  # SynthesisDone came: every sentence of the reply was handed to playback
    chunks: int = 0  # audio chunks synthesised (0 at SynthesisDone = a silent reply)
    applied: bool = False  # committed side effects (intent events, routing) done
    gate: threading.Event = field(default_factory=threading.Event)  # set = playback may be heard
    commit_event: threading.Event = field(default_factory=threading.Event)  # set once (Ctx.committed)
    marks: dict[str, int] = field(default_factory=dict)
    held: list[object] = field(default_factory=list)  # event payloads held until commit


@dataclass(slots=True)
class Turn:
    id: int
    trigger: Trigger
    created_ns: int
    wake_word: str = ""
    t0_ns: int | None = None  # last voiced sample captured
    marks: dict[str, int] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    route: Route = ""
    transcript: str = ""
    reply_text: str = ""
    heard_text: str = ""
    error: str = ""
    speculative_used: bool = False
    remembered: bool = False  # added to the LLM conversation history
    # words said before a pause that this turn's speech continues ("what is the" … "capital of France"):
    # attempts numbered above ``prefix_after`` decode them together with their own audio, as one
    # sentence (whisper hears a fragment badly: "what is the" alone came back "What is that?")
    prefix_audio: Pcm | None = None
    prefix_end: int = 0  # stream sample after ``prefix_audio``
    prefix_after: int = 0
    held: Attempt | None = (
        None  # an unfinished transcript waiting for its end (endpoint.unfinished_silence_ms)
    )
    previous: IntentOutcome | None = None  # the command a continuation turn goes on from ("… and the fan")
    echo_of: str = ""  # a continuation that began while this reply played: its words may be that reply
    # a wake word said in the follow-up window: its speech_started was published for the window's turn
    # (the VAD hears "Hey Jarvis" first); the listener's start of the words after it is not published again
    started_published: bool = False

    def becomes_wake(self) -> bool:
        """ "Hey Jarvis" in the follow-up window (or right after a reply), before anything was committed:
        this turn becomes the wake word's (no phantom barge-in: nothing was said to the device yet)."""
        if self.trigger not in ("follow_up", "continuation") or self.committed is not None:
            return False
        self.cancel_all("wake")
        self.trigger, self.prefix_audio, self.previous, self.echo_of = "wake", None, None, ""
        self.started_published = True
        return True

    def continues(self, previous: IntentOutcome | None, echo_of: str, said: Attempt | None) -> None:
        """A continuation turn: the command it may go on from, the reply its words may only echo, and the
        words of an unfinished question it asks again (decoded with its own)."""
        self.previous, self.echo_of = previous, echo_of
        if said is not None:
            self.hold_words(said)
            self.prefix_after = 0  # (said was another turn's attempt) every attempt of this one

    def hold_words(self, a: Attempt) -> None:
        """Attempt ``a``'s words were not the end: later attempts decode them again, with the rest."""
        self.prefix_audio, self.prefix_end, self.prefix_after = a.audio, a.audio_end, a.number

    def audio_for(self, a: Attempt, audio: Pcm, start_sample: int) -> Pcm:
        """What attempt ``a`` decodes: its own audio from ``start_sample``, after the held words (the
        pause between them kept, at most ``MAX_HELD_GAP``). Recorded on the attempt."""
        a.audio_end = start_sample + len(audio)
        if self.prefix_audio is not None and a.number > self.prefix_after:
            cut = max(0, self.prefix_end - start_sample)
            gap = np.zeros(min(max(0, start_sample - self.prefix_end), MAX_HELD_GAP), np.int16)
            audio = np.concatenate([self.prefix_audio, gap, audio[cut:]])
        a.audio = audio
        return audio

    def mark(self, name: Mark, ns: int) -> None:
        self.marks.setdefault(name, ns)

    def live(self, turn_id: int, number: int) -> Attempt | None:
        """The live attempt a message names, or None if it is stale (another turn, or cancelled)."""
        if turn_id != self.id or not 1 <= number <= len(self.attempts):
            return None
        a = self.attempts[number - 1]
        return None if a.cancel.cancelled else a

    def new_attempt(
        self, last_voiced_sample: int, t0_ns: int | None = None, after_sample: int = 0
    ) -> Attempt:
        a = Attempt(len(self.attempts) + 1, last_voiced_sample, t0_ns, after_sample)
        self.attempts.append(a)
        return a

    def ctx(self, a: Attempt) -> Ctx:
        """What every job of attempt ``a`` carries to the engine threads."""
        return Ctx(self.id, a.number, a.cancel, a.gate, a.commit_event)

    def spoken(self, text: str, now_ns: int) -> Attempt:
        """Make this a ``say`` turn: nothing to hear from the user, one committed attempt speaking
        ``text`` (its t0 is now: voice-to-voice is then the time to the first sample)."""
        self.route, self.reply_text, self.t0_ns = "say", text, now_ns
        a = self.new_attempt(0)
        a.transcript = ""
        a.committed = a.reply_started = True
        a.gate.set()
        a.commit_event.set()
        self.mark(Mark.COMMITTED, now_ns)
        a.marks[Mark.REPLY_START] = now_ns
        return a

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def committed(self) -> Attempt | None:
        return next((a for a in self.attempts if a.committed), None)

    def said(self) -> str:
        """What this turn's reply says (or will: all of it that exists yet) — a timer's or a say turn's
        text, a fast-path confirmation, the LLM's answer streamed so far."""
        a = self.committed
        parts = [self.reply_text] + ([a.reply_text, a.streamed] if a is not None else [])
        return " ".join(p for p in parts if p)

    @property
    def audible(self) -> bool:
        """Some reply audio of the committed attempt exists (PlaybackStarted may still be queued)."""
        a = self.committed
        return Mark.PLAYBACK_STARTED in self.marks or (a is not None and a.chunks > 0)

    def heard_before(self, captured_ns: int) -> bool:
        """The reply's first sample was played before ``captured_ns`` (a capture time): speech that began
        earlier was not an answer to it, however late the listener reported that speech."""
        played = self.marks.get(Mark.PLAYBACK_STARTED)
        return played is not None and played <= captured_ns

    def cancel_all(self, reason: str) -> None:
        for a in self.attempts:
            a.cancel.cancel(reason)

    def latency(self) -> dict[str, float | None]:
        """The breakdown published in ``response.done`` (ms); keys are ``vocabulary.Latency``."""
        m = self.marks
        a = self.committed
        am = a.marks if a else {}
        out: dict[str, float | None] = {
            Latency.ENDPOINT: _ms(self.t0_ns, m.get(Mark.COMMITTED)),
            Latency.DECODE_START: _ms(self.t0_ns, am.get(Mark.ASR_START)),
            Latency.ASR_WAIT: _wait_ms(
                am.get(Mark.ASR_START), am.get(Mark.TRANSCRIPT), a.asr_ms if a else None
            ),
            Latency.ASR: a.asr_ms if a else None,
            Latency.INTENT: _ms(am.get(Mark.TRANSCRIPT), am.get(Mark.INTENT))
            if self.route == "intent"
            else None,
            Latency.LLM_TTFT: _ms(am.get(Mark.LLM_START), am.get(Mark.LLM_FIRST_TOKEN))
            if self.route == "llm"
            else None,
            Latency.FIRST_SENTENCE: _ms(am.get(Mark.REPLY_START), am.get(Mark.FIRST_SENTENCE)),
            Latency.TTS_FIRST_CHUNK: _ms(am.get(Mark.FIRST_SENTENCE), am.get(Mark.FIRST_AUDIO)),
            Latency.VOICE_TO_VOICE: _ms(self.t0_ns, m.get(Mark.PLAYBACK_STARTED)),
        }
        if Mark.WAKE_ACK in m and Mark.WAKE in m:
            out[Latency.WAKE_TO_ACK] = _ms(m[Mark.WAKE], m[Mark.WAKE_ACK])
        return {str(k): v for k, v in out.items()}


def _wait_ms(handed: int | None, back: int | None, decode_ms: float | None) -> float | None:
    """The part of handed → back that was not the decode itself (the queue, the thread hand-offs)."""
    took = _ms(handed, back)
    return None if took is None or decode_ms is None else round(max(0.0, took - decode_ms), 1)


def _ms(a: int | None, b: int | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a) / 1e6, 1)
