"""End to end with every real engine: a generated WAV in → events + reply WAV out.

The reply WAV is checked by transcribing it back with our own ASR, so "holds speech" means "says the
expected words", not "is not silent".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_voice.audio import clips
from edge_voice.audio.sinks import WavSink
from edge_voice.audio.sources import InputClock, WavSource
from edge_voice.audio.wavio import read_wav_16k, write_wav
from edge_voice.core.config import Config
from edge_voice.integrations.sinks import MemorySink
from edge_voice.runtime.daemon import Engines
from tests.integration.rig import heard_back

pytestmark = pytest.mark.engines


def _fixed_facts() -> str:
    """The clock time ends every LLM prompt; with a fixed sampling seed the answer then depends on the
    minute the test runs. A fixed moment makes the test about the pipeline, not about the clock."""
    return "It is 10:00 on Monday, 02 March 2026."


class _BargesInOnceSpeaking(WavSource):
    """A user who talks over the device: the input from ``at`` on is read only once a reply has begun
    playing (a loaded box may take longer than the file's gap to start it; a quick one never waits).
    Pacing restarts when the hold ends, so input and playback stay on the same clock."""

    def __init__(self, pcm: np.ndarray, clock: InputClock, at: int, sink: WavSink) -> None:
        super().__init__(pcm, pace="adaptive", clock=clock)
        self._at: int | None = at
        self._sink = sink

    def read(self, n: int) -> np.ndarray:
        if self._at is not None and self._pos + n > self._at:
            self._at = None
            deadline = time.monotonic() + 30
            while not self._sink.replies and time.monotonic() < deadline:
                time.sleep(0.005)
            self._t_ref = None
        return super().read(n)


def _run(
    cfg: Config, engines: Engines, pcm: np.ndarray, out: Path, barge_in_at: int | None = None
) -> tuple[MemorySink, WavSink]:
    from edge_voice.runtime.daemon import Daemon

    clock = InputClock()
    sink = WavSink(out, clock, engines.tts.sample_rate)
    source: WavSource = WavSource(pcm, pace="adaptive", clock=clock)
    if barge_in_at is not None:
        source = _BargesInOnceSpeaking(pcm, clock, barge_in_at, sink)
    memory = MemorySink()
    Daemon(cfg, engines, source, sink, [memory], clock, facts=_fixed_facts).run()
    sink.save(source.duration_samples)
    return memory, sink


def _turn_clip(command: str, tail_ms: int = 8000) -> clips.Clip:
    return clips.compose(
        [
            ("lead", clips.silence(800)),
            ("wake", clips.piper_speech("Hey Jarvis,")),
            ("gap", clips.silence(150)),
            ("cmd", clips.piper_speech(command)),
            ("tail", clips.silence(tail_ms)),
        ]
    )


def test_command_turn_replies_with_spoken_confirmation(engines: Engines, tmp_path: Path) -> None:
    clip = _turn_clip("turn on the kitchen light.")
    memory, sink = _run(Config(), engines, clip.pcm, tmp_path / "reply.wav")
    types = [t for t in memory.types() if t != "response.text.delta"]
    expected = [
        "wake.detected",
        "input_audio.speech_started",
        "input_audio.speech_stopped",
        "transcript.final",
        "intent.recognized",
        "response.started",
        "response.audio.started",
        "response.done",
    ]
    assert [t for t in types if t in expected] == expected
    intent = memory.of("intent.recognized")[0].data
    assert intent["name"] == "turn_on" and intent["slots"]["device"] == ["kitchen light"]
    assert "kitchen light" in memory.of("transcript.final")[0].data["text"].lower()
    done = memory.of("response.done")[0].data
    assert done["route"] == "intent"
    # the reply starts after the user stopped speaking, at the position the speaker would play it
    reply_start = sink.replies[0][0]
    assert (
        reply_start
        > clip.part("cmd").start_sample
        + clips.voiced_bounds(clips.piper_speech("turn on the kitchen light."))[1]
        - 1600
    )
    heard = heard_back(engines, sink)
    assert "kitchen" in heard and "light" in heard and "on" in heard


def test_question_turn_streams_an_llm_answer(engines: Engines, tmp_path: Path) -> None:
    clip = _turn_clip("how many legs does a spider have?")  # the LLM's (the skills answer capitals)
    memory, sink = _run(Config(), engines, clip.pcm, tmp_path / "reply.wav")
    types = memory.types()
    assert "intent.recognized" not in types
    assert types.index("response.started") < types.index("response.text.delta") < types.index("response.done")
    done = memory.of("response.done")[0].data
    assert done["route"] == "llm" and "eight" in str(done["reply"]).lower()
    lat = done["latency"]
    assert lat["llm_ttft_ms"] is not None and lat["voice_to_voice_ms"] is not None
    assert re.search(r"\b(eight|8)\b", heard_back(engines, sink))


def test_barge_in_stops_playback_and_history_keeps_heard_part(engines: Engines, tmp_path: Path) -> None:
    cfg = Config()
    cfg = replace(cfg, llm=replace(cfg.llm, max_tokens=120))
    question = clips.piper_speech("tell me a long story about a dragon and a knight.")
    wake = clips.piper_speech("Hey Jarvis,")
    # the second wake word comes ~2 s after the first question ends: mid-answer (on a box too loaded to
    # be speaking by then, the user waits until it is)
    clip = clips.compose(
        [
            ("lead", clips.silence(800)),
            ("wake", wake),
            ("gap", clips.silence(150)),
            ("q", question),
            ("wait", clips.silence(3000)),
            ("wake2", wake),
            ("gap2", clips.silence(150)),
            ("cmd", clips.piper_speech("stop.")),
            ("tail", clips.silence(5000)),
        ]
    )
    memory, sink = _run(cfg, engines, clip.pcm, tmp_path / "reply.wav", clip.part("wake2").start_sample)
    cancelled = memory.of("turn.cancelled")
    assert cancelled and cancelled[0].data["reason"] == "barge_in"
    first = next(e for e in memory.of("response.done") if e.turn_id == cancelled[0].turn_id).data
    assert first["status"] == "interrupted"
    heard, reply = str(first["heard"]), str(first["reply"])
    assert heard and len(heard) < len(reply)
    # playback stopped within 200 ms of the second wake word being detected: at_sample is where its score
    # first crossed the threshold, the detection comes wake.patience 80 ms hops later (1280 samples each)
    wake2 = memory.of("wake.detected")[1].data["at_sample"] + (cfg.wake.patience - 1) * 1280
    _, end = sink.replies[0]
    assert end - wake2 < 0.2 * 16000


def test_cli_run_writes_reply_wav_and_events(tmp_path: Path) -> None:
    clip = _turn_clip("turn off the fan.", tail_ms=5000)
    wav = tmp_path / "in.wav"
    write_wav(wav, clip.pcm)
    out, events = tmp_path / "reply.wav", tmp_path / "events.jsonl"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_voice",
            "run",
            "--input",
            str(wav),
            "--output",
            str(out),
            "--events",
            str(events),
            "--fast",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    done = [r for r in rows if r["type"] == "response.done"]
    assert done and done[0]["route"] == "intent" and "fan" in done[0]["reply"].lower()
    assert set(done[0]["latency"]) >= {"endpoint_ms", "asr_ms", "intent_ms", "voice_to_voice_ms"}
    assert read_wav_16k(out).size >= clip.pcm.size - 2  # 22.05 → 16 kHz rounding
