"""``make demo``: two spoken turns from a generated WAV through every real engine.

Writes ``out/demo-input.wav``, ``out/reply.wav`` (reply audio at the positions a speaker would play it),
``out/events.jsonl``, and prints the events and the latency breakdown per turn. The reply is checked by
transcribing it back with our own ASR.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from edge_voice.core.config import Config
from edge_voice.core.vocabulary import Latency

DEMO_TURNS = (  # (wake word, what is said, words the reply must hold)
    ("Hey Jarvis,", "turn on the kitchen light.", ("kitchen", "light")),
    ("Hey Jarvis,", "what is the capital of France?", ("paris",)),
)
LATENCY_KEYS = tuple(k for k in Latency if k != Latency.WAKE_TO_ACK)  # the per-stage breakdown


def make_demo_input(path: Path) -> tuple[Path, list[int]]:
    """The spoken input, and where each turn after the first begins (its wake word) and the input ends:
    the simulated user waits there until the device has answered (``WavSource(hold_at=…)``). On a real
    device the answer comes well within the 7 s gap; under emulation it takes minutes, and the next wake
    word would barge in (or the input's end cancel the last turn)."""
    from edge_voice.audio import clips
    from edge_voice.audio.wavio import write_wav

    segments: list[tuple[str, np.ndarray]] = [("lead", clips.silence(1000))]
    for i, (wake, command, _) in enumerate(DEMO_TURNS):
        segments += [
            (f"wake{i}", clips.piper_speech(wake)),
            (f"gap{i}", clips.silence(150)),
            (f"cmd{i}", clips.piper_speech(command)),
            (f"after{i}", clips.silence(7000)),
        ]
    clip = clips.compose(segments)
    write_wav(path, clip.pcm)
    # and the input does not end (which cancels a turn) before the last answer
    holds = [clip.part(f"wake{i}").start_sample for i in range(1, len(DEMO_TURNS))]
    return path, [*holds, len(clip.pcm)]


def run_demo(cfg: Config, out: Path) -> int:
    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock, WavSource
    from edge_voice.audio.wavio import read_wav_16k
    from edge_voice.core.cancel import CancelToken
    from edge_voice.integrations.sinks import JsonlSink, MemorySink, event_dict
    from edge_voice.runtime.daemon import Daemon, load_engines

    out.mkdir(parents=True, exist_ok=True)
    print("edge-voice demo: generating the spoken input with Piper…", file=sys.stderr)
    wav_in, holds = make_demo_input(out / "demo-input.wav")
    engines = load_engines(cfg, lambda m: print(f"  {m}", file=sys.stderr))
    print(f"  models loaded and warmed: {engines.load_ms}", file=sys.stderr)
    clock = InputClock()
    source = WavSource(wav_in, pace="adaptive", clock=clock, hold_at=holds)
    rate = cfg.audio.output_rate_hz or engines.tts.sample_rate
    sink = WavSink(out / "reply.wav", clock, rate)
    memory = MemorySink()
    jsonl = JsonlSink(out / "events.jsonl")
    daemon = Daemon(cfg, engines, source, sink, [memory, jsonl], clock)
    daemon.run()
    jsonl.close()
    sink.save(source.duration_samples)

    print("\nevents:")
    for ev in memory.events:
        d = event_dict(ev)
        if ev.type == "response.text.delta":
            continue
        extra = {k: v for k, v in d.items() if k not in ("type", "turn_id", "ts", "ts_mono_ns", "latency")}
        print(f"  turn {ev.turn_id}  {ev.type:28s} {extra}")

    print("\nlatency from the end of speech (ms):")
    header = "  turn  route    " + "".join(f"{k.removesuffix('_ms'):>18s}" for k in LATENCY_KEYS)
    print(header)
    for ev in memory.of("response.done"):
        lat = ev.data.get("latency") or {}
        assert isinstance(lat, dict)
        cells = "".join(f"{'-' if lat.get(k) is None else lat[k]:>18}" for k in LATENCY_KEYS)
        print(f"  {ev.turn_id:<5} {ev.data.get('route')!s:8s}{cells}")

    # prove the reply is speech: transcribe each reply back with our own ASR
    reply = read_wav_16k(out / "reply.wav")
    print("\nreplies, transcribed back from reply.wav by whisper.cpp:")
    for start, end in sink.replies:
        if end <= start or "asr" in daemon.lingering:  # whisper.cpp is one thread's at a time
            continue
        text = engines.asr.transcribe(reply[start:end], CancelToken()).text
        print(f"  at {start / 16000:6.2f} s: {text!r}")
    if source.held_s >= 0.5:
        print(f"\nthe input waited {source.held_s:.1f} s for answers before the next wake word")
    print(f"\nwrote {out / 'reply.wav'}, {out / 'events.jsonl'}, {wav_in}")
    problems = check_turns([ev.data for ev in memory.of("response.done")])
    for problem in problems:
        print(f"edge-voice demo FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def check_turns(done: list[dict[str, object]]) -> list[str]:
    """What is wrong with the demo's turns (``response.done`` payloads): each must end ``done`` with a
    reply holding its words. A demo that answers wrongly or not at all must not pass quietly."""
    problems = [f"{len(DEMO_TURNS)} turns spoken, {len(done)} ended"] if len(done) != len(DEMO_TURNS) else []
    for i, (d, (_, said, words)) in enumerate(zip(done, DEMO_TURNS, strict=False), start=1):
        reply = str(d.get("reply") or "")
        if d.get("status") != "done":
            heard = d.get("transcript")
            problems.append(
                f"turn {i} ({said!r}) ended {d.get('status')!r} (heard {heard!r}, reply {reply!r})"
            )
        elif not all(re.search(rf"\b{w}\b", reply.lower()) for w in words):
            problems.append(
                f"turn {i} ({said!r}) was answered {reply!r}, which does not say {' '.join(words)!r}"
            )
    return problems
