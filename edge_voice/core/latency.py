"""Latency marks, stamped by observing what passes through the orchestrator (as pipecat's observers
watch frames): messages from the engine threads, the jobs handed to them, and state changes. The
breakdown itself is ``Turn.latency()``; the mark names are ``turns.Mark``."""

from __future__ import annotations

from edge_voice.core.jobs import AsrJob, EndOfReply, LlmJob, SpeakJob
from edge_voice.core.messages import (
    AudioChunk,
    GenerationDone,
    Message,
    PlaybackStarted,
    SentenceReady,
    SpeechStarted,
    SynthesisDone,
    TextDelta,
    Transcript,
    WakeDetected,
)
from edge_voice.core.turns import Attempt, Mark, Turn
from edge_voice.core.vocabulary import State


class LatencyRecorder:
    def before(self, msg: Message, turn: Turn | None, now_ns: int) -> None:
        """An engine result for a live attempt of ``turn``, before the orchestrator acts on it."""
        match msg:
            case (
                Transcript()
                | TextDelta()
                | SentenceReady()
                | GenerationDone()
                | AudioChunk()
                | SynthesisDone()
            ):
                a = turn.live(msg.turn_id, msg.attempt) if turn is not None else None
            case _:
                return
        if a is None:
            return
        m = a.marks
        match msg:
            case Transcript():
                m[Mark.TRANSCRIPT] = now_ns
            case TextDelta() if msg.first:
                m.setdefault(Mark.LLM_FIRST_TOKEN, now_ns)
            case SentenceReady():
                m.setdefault(Mark.FIRST_SENTENCE, now_ns)
            case GenerationDone():
                m[Mark.LLM_DONE] = now_ns
            case AudioChunk():
                m.setdefault(Mark.FIRST_AUDIO, now_ns)
            case SynthesisDone():
                m[Mark.SYNTH_DONE] = now_ns

    def after(self, msg: Message, turn: Turn | None) -> None:
        """A listen or playback report, once the orchestrator has opened (or kept) the turn."""
        if turn is None:
            return
        match msg:
            case WakeDetected() if turn.trigger == "wake":
                turn.mark(Mark.WAKE, msg.captured_ns)
            case SpeechStarted() if turn.committed is None:
                turn.mark(Mark.SPEECH_STARTED, msg.captured_ns)
            case PlaybackStarted() if turn.id == msg.turn_id:
                turn.mark(Mark.PLAYBACK_STARTED, msg.written_ns)

    def job(self, job: AsrJob | LlmJob | SpeakJob | EndOfReply, a: Attempt, now_ns: int) -> None:
        """Work handed to an engine thread for attempt ``a``."""
        match job:
            case AsrJob():
                a.marks[Mark.ASR_START] = now_ns
            case LlmJob():
                a.marks[Mark.LLM_START] = now_ns
            case SpeakJob(index=0):  # a fast-path or ``say`` reply: its one sentence is ready at once
                a.marks.setdefault(Mark.FIRST_SENTENCE, now_ns)

    def state(self, turn: Turn | None, state: State, now_ns: int) -> None:
        if turn is not None and state == State.LISTENING:
            turn.mark(Mark.WAKE_ACK, now_ns)
