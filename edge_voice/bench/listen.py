"""``edge-voice bench listen``: what the always-on listening stage costs, and what it detects.

A generated stream (Piper and espeak-ng wake phrases + commands, non-target speech, noise, silence) is fed
in 80 ms frames twice: once as fast as possible, and once paced in real time for ``seconds``, the way a
microphone delivers it. Per frame we take the listen thread's CPU time (``time.thread_time_ns``: other
processes on a shared box do not inflate it) of the wake detector, the VAD and the whole ``Listener.feed``
(wake + VAD + endpointer); over the paced run ``time.thread_time`` gives the share of one core the listen
thread really uses. Target on a 2-core box: ≤ 2 ms per frame, ≤ 5 % of a core.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, AudioFrame, ListenEvent, Pcm, SpeechStopped, WakeDetected
from edge_voice.engines.base import VoiceActivityDetector, WakeDetector

log = logging.getLogger(__name__)

FRAME = 1280  # 80 ms of audio per step: the wake-word hop, the unit of the per-frame target
TARGET_FRAME_MS = 2.0
TARGET_CORE_PCT = 5.0


class _TimedWake:
    """Times a WakeDetector and records its per-hop scores (bench instrumentation, not a fake)."""

    def __init__(self, inner: WakeDetector) -> None:
        self.inner = inner
        self.words = inner.words
        self.ns = 0
        self.scores: list[dict[str, float]] = []  # per completed hop, in stream order

    def process(self, samples: Pcm) -> dict[str, float]:
        t = time.thread_time_ns()  # CPU time: immune to preemption by other processes
        out = self.inner.process(samples)
        self.ns += time.thread_time_ns() - t
        if out:
            self.scores.append(out)
        return out

    def reset(self) -> None:
        self.inner.reset()


class _TimedVad:
    def __init__(self, inner: VoiceActivityDetector) -> None:
        self.inner = inner
        self.frame_samples = inner.frame_samples
        self.ns = 0

    def process(self, frame: Pcm) -> float:
        t = time.thread_time_ns()
        out = self.inner.process(frame)
        self.ns += time.thread_time_ns() - t
        return out

    def reset(self) -> None:
        self.inner.reset()


@dataclass
class _Stream:
    pcm: Pcm
    positives: list[tuple[str, int, int]] = field(default_factory=list)  # (condition, wake phrase span)
    commands: list[tuple[str, int, int]] = field(default_factory=list)
    negatives: list[tuple[str, int, int]] = field(default_factory=list)  # non-target speech and noise


def make_stream(seconds: float) -> _Stream:
    """A deterministic mixed stream at least ``seconds`` long."""
    from edge_voice.audio import clips

    cache: dict[tuple[str, str], Pcm] = {}

    def say(kind: str, text: str) -> Pcm:
        if (kind, text) not in cache:
            cache[kind, text] = (
                clips.piper_speech(text) if kind == "piper" else clips.espeak_speech(text, kind)
            )
        return cache[kind, text]

    cycle: list[tuple[str, Pcm]] = [
        ("quiet", clips.silence(2000)),
        ("pos:piper clean", say("piper", "Hey Jarvis")),
        ("gap", clips.silence(300)),
        ("cmd:piper", say("piper", "turn on the kitchen light")),
        ("quiet", clips.silence(1500)),
        ("neg:piper speech", say("piper", "I think the weather will be nice tomorrow, let's go for a walk.")),
        ("quiet", clips.silence(1000)),
        ("pos:espeak en-us clean", say("en-us", "Hey Jarvis")),
        ("gap", clips.silence(300)),
        ("cmd:en-us", say("en-us", "what time is it")),
        ("quiet", clips.silence(1500)),
        ("neg:pink noise -35 dBFS", clips.noise(3000, -35.0, seed=3, kind="pink")),
        ("pos:espeak en-gb 10 dB white", clips.mix_at_snr(say("en-gb", "Hey Jarvis"), 10.0, seed=4)),
        ("gap", clips.silence(300)),
        ("cmd:en-gb 10 dB", clips.mix_at_snr(say("en-gb", "switch off the fan"), 10.0, seed=5)),
        ("quiet", clips.silence(1500)),
        (
            "neg:espeak en-gb speech",
            say("en-gb", "Please remind me to call my sister at seven in the evening."),
        ),
        ("quiet", clips.silence(1000)),
    ]
    segments: list[tuple[str, Pcm]] = []
    total = 0
    while total < seconds * SAMPLE_RATE:
        for label, pcm in cycle:
            segments.append((label, pcm))
            total += len(pcm)
    clip = clips.compose(segments)
    stream = _Stream(clip.pcm)
    for part in clip.parts:
        kind, _, condition = part.label.partition(":")
        spans = {"pos": stream.positives, "cmd": stream.commands, "neg": stream.negatives}.get(kind)
        if spans is not None:
            spans.append((condition, part.start_sample, part.end_sample))
    return stream


def _stats(values_ns: list[int]) -> dict[str, float]:
    a = np.asarray(values_ns, dtype=np.float64) / 1e6
    return {
        "mean": round(float(a.mean()), 4),
        "p50": round(float(np.percentile(a, 50)), 4),
        "p95": round(float(np.percentile(a, 95)), 4),
        "max": round(float(a.max()), 4),
    }


def _feed_all(
    cfg: Config, wake: _TimedWake, vad: _TimedVad, pcm: Pcm, pace: bool, max_frames: int | None = None
) -> dict[str, Any]:
    from edge_voice.listen.listener import Listener

    listener = Listener(cfg, wake, vad)
    wake.scores.clear()
    per_wake, per_vad, per_total, per_cpu = [], [], [], []
    events: list[ListenEvent] = []
    n_frames = len(pcm) // FRAME if max_frames is None else min(max_frames, len(pcm) // FRAME)
    cpu0, proc0, wall0 = time.thread_time(), time.process_time(), time.monotonic()
    for k in range(n_frames):
        if pace:  # deliver frame k when its last sample would have been captured
            delay = wall0 + (k + 1) * FRAME / SAMPLE_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        frame = AudioFrame(pcm[k * FRAME : (k + 1) * FRAME], k * FRAME, time.monotonic_ns())
        wake.ns = vad.ns = 0
        c, t = time.thread_time_ns(), time.perf_counter_ns()
        events.extend(listener.feed(frame))
        per_total.append(time.perf_counter_ns() - t)
        per_cpu.append(time.thread_time_ns() - c)
        per_wake.append(wake.ns)
        per_vad.append(vad.ns)
        if events and isinstance(events[-1], SpeechStopped):
            listener.close()  # the turn is over (what the orchestrator does)
    cpu, proc, wall = time.thread_time() - cpu0, time.process_time() - proc0, time.monotonic() - wall0
    return {
        "frames": n_frames,
        "wake": per_wake,
        "vad": per_vad,
        "total": per_total,
        "cpu": per_cpu,
        "events": events,
        "thread_cpu_s": cpu,
        "process_cpu_s": proc,
        "wall_s": wall,
        "scores": list(wake.scores),
    }


def _detections(
    stream: _Stream, events: list[ListenEvent], scores: list[dict[str, float]], frames: int
) -> dict[str, Any]:
    """Wake detections against where the wake phrases are (a hit = within 1 s after the phrase), and
    peak scores per condition (hop k of ``scores`` ends at sample (k + 1) * FRAME)."""
    end = frames * FRAME
    positives = [p for p in stream.positives if p[2] + SAMPLE_RATE <= end]
    wakes = [e for e in events if isinstance(e, WakeDetected)]

    def hit(a: int, b: int) -> bool:
        return any(a <= w.at_sample <= b + SAMPLE_RATE for w in wakes)

    def peak(a: int, b: int) -> float:
        lo, hi = a // FRAME, min(len(scores), b // FRAME + 1)
        return max((max(s.values()) for s in scores[lo:hi]), default=0.0)

    false = [w for w in wakes if not any(a <= w.at_sample <= b + SAMPLE_RATE for _, a, b in positives)]
    by_condition: dict[str, dict[str, Any]] = {}
    for cond, a, b in positives:
        row = by_condition.setdefault(cond, {"n": 0, "detected": 0, "peak_scores": []})
        row["n"] += 1
        row["detected"] += hit(a, b)
        row["peak_scores"].append(round(peak(a, b + SAMPLE_RATE // 2), 4))
    negatives: dict[str, float] = {}
    for cond, a, b in stream.negatives:
        if b <= end:
            negatives[cond] = round(max(negatives.get(cond, 0.0), peak(a, b)), 4)
    return {
        "positives": len(positives),
        "detected": sum(hit(a, b) for _, a, b in positives),
        "false_accepts": len(false),
        "positives_by_condition": by_condition,
        "negative_peak_score_by_condition": negatives,
        "max_negative_score": max(negatives.values(), default=0.0),
        "utterances": sum(isinstance(e, SpeechStopped) for e in events),
    }


def run(cfg: Config, out_dir: Path, seconds: int = 60, **_: Any) -> dict[str, Any]:
    from edge_voice.listen.vad import SileroVad
    from edge_voice.listen.wake import OpenWakeWordDetector

    out_dir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    stream = make_stream(seconds)
    gen_s = time.monotonic() - t
    t = time.monotonic()
    wake = _TimedWake(OpenWakeWordDetector(cfg.wake))
    vad = _TimedVad(SileroVad(cfg.vad))
    load_s = time.monotonic() - t

    fast = _feed_all(cfg, wake, vad, stream.pcm, pace=False)
    paced_frames = int(seconds * SAMPLE_RATE) // FRAME
    paced = _feed_all(cfg, wake, vad, stream.pcm, pace=True, max_frames=paced_frames)

    def per_frame(r: dict[str, Any]) -> dict[str, Any]:
        both = [w + v for w, v in zip(r["wake"], r["vad"], strict=True)]
        return {  # CPU time of the listen thread per 80 ms frame; wall time only for the whole feed
            "wake_ms": _stats(r["wake"]),
            "vad_ms": _stats(r["vad"]),
            "wake_vad_ms": _stats(both),
            "listener_ms": _stats(r["cpu"]),
            "listener_wall_ms": _stats(r["total"]),
        }

    core_pct = 100.0 * paced["thread_cpu_s"] / paced["wall_s"]
    result: dict[str, Any] = {
        "frame_ms": FRAME * 1000 // SAMPLE_RATE,
        "stream_s": round(len(stream.pcm) / SAMPLE_RATE, 1),
        "generate_s": round(gen_s, 2),
        "load_s": round(load_s, 3),
        "wake_words": list(wake.words),
        "threads": {"wake": cfg.wake.threads, "vad": cfg.vad.threads},
        "fast": {
            "frames": fast["frames"],
            **per_frame(fast),
            "realtime_factor": round(fast["wall_s"] / (fast["frames"] * FRAME / SAMPLE_RATE), 4),
        },
        "paced": {
            "frames": paced["frames"],
            **per_frame(paced),
            "wall_s": round(paced["wall_s"], 2),
            "thread_cpu_s": round(paced["thread_cpu_s"], 3),
            "core_pct": round(core_pct, 2),
            "process_core_pct": round(100.0 * paced["process_cpu_s"] / paced["wall_s"], 2),
        },
        "detections": _detections(stream, fast["events"], fast["scores"], fast["frames"]),
        "detections_paced": _detections(stream, paced["events"], paced["scores"], paced["frames"]),
        "target": {"wake_vad_ms_per_frame": TARGET_FRAME_MS, "core_pct": TARGET_CORE_PCT},
    }
    # Per-frame cost = CPU time in the fast pass (the paced pass adds cold caches after every 80 ms
    # sleep, reported separately); the share of a core comes from the paced pass's thread CPU time.
    frame_ok = result["fast"]["wake_vad_ms"]["mean"] <= TARGET_FRAME_MS
    result["meets_target"] = {"frame_ms": frame_ok, "core_pct": core_pct <= TARGET_CORE_PCT}
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)  # other work on the box during the run
    (out_dir / "listen.json").write_text(json.dumps(result, indent=2))
    _plot(paced, fast, stream, out_dir / "listen.png")
    log.info(
        "bench listen: wake+vad %.2f ms/frame (p95 %.2f), %.1f %% of a core; detected %d/%d, %d false",
        result["fast"]["wake_vad_ms"]["mean"],
        result["fast"]["wake_vad_ms"]["p95"],
        core_pct,
        result["detections"]["detected"],
        result["detections"]["positives"],
        result["detections"]["false_accepts"],
    )
    return result


def _plot(paced: dict[str, Any], fast: dict[str, Any], stream: _Stream, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    t = np.arange(paced["frames"]) * FRAME / SAMPLE_RATE
    ax1.plot(t, np.asarray(paced["wake"]) / 1e6, lw=0.7, label="wake (mel+emb+heads)")
    ax1.plot(t, np.asarray(paced["vad"]) / 1e6, lw=0.7, label="VAD (2.5 silero frames)")
    ax1.plot(t, np.asarray(paced["cpu"]) / 1e6, lw=0.7, alpha=0.6, label="Listener.feed total")
    ax1.axhline(TARGET_FRAME_MS, color="red", ls="--", lw=0.8, label=f"target {TARGET_FRAME_MS} ms")
    ax1.set_ylabel("thread CPU ms per 80 ms frame (paced)")
    ax1.legend(loc="upper right", fontsize=8)
    scores = fast["scores"]
    ts = (np.arange(len(scores)) + 1) * FRAME / SAMPLE_RATE
    for word in scores[0] if scores else {}:
        ax2.plot(ts, [s[word] for s in scores], lw=0.8, label=word)
    for _, a, b in stream.positives:
        if a / SAMPLE_RATE <= ts[-1]:
            ax2.axvspan(a / SAMPLE_RATE, b / SAMPLE_RATE, color="green", alpha=0.15)
    for _, a, b in stream.negatives:
        if a / SAMPLE_RATE <= ts[-1]:
            ax2.axvspan(a / SAMPLE_RATE, b / SAMPLE_RATE, color="grey", alpha=0.15)
    for e in fast["events"]:
        if isinstance(e, WakeDetected):
            ax2.axvline(e.at_sample / SAMPLE_RATE, color="red", lw=0.8)
    ax2.set_ylabel("wake score (green: wake phrase, grey: other)")
    ax2.set_xlabel("stream time (s)")
    ax2.set_ylim(0, 1.05)
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
