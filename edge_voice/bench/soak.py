"""``edge-voice bench soak --opt turns=1000``: the real daemon driven by an endless stream of generated
scenes — commands, questions, silence, noise, barge-ins, follow-ups — in a seeded random order, paced
adaptively (idle audio as fast as possible, real time while a turn is open, so replies, barge-ins and
follow-ups happen as they would in a room).

Every 50 scenes it records RSS, open file descriptors and threads. Invariants (the JSON says which hold):
no crash, no stuck turn (every turn ends; none is open at the end), RSS growth < 5 % after warm-up (of
the floor between turns, ``rss_floor_growth``), voice-to-voice p95 of the last 100 turns within 10 % of
the first 100.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.audio import clips
from edge_voice.audio.sources import FRAME_SAMPLES, InputClock, SourceExhausted, WavSource
from edge_voice.core.config import Config
from edge_voice.core.events import Event
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.runtime import heap

SAMPLE_EVERY = 50
WARMUP_SCENES = 50
BARGE_AFTER_MS = 300  # how much of the reply the user hears before interrupting it
REPLY_WAIT_MS = 10000  # a barge-in scene gives up waiting for the reply after this much room audio


def _proc_status(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def process_sample() -> dict[str, float]:
    """RSS as the daemon keeps it between turns: it trims the heap at every turn end, and trimming here
    too keeps a sample that lands mid-reply from counting freed-but-held pages as growth. Buffers in use
    still count, and ``heap.stats`` says how much of the heap is in use versus held."""
    heap.trim()
    return {
        "rss_mb": round(_proc_status("VmRSS") / 1024, 1),
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": _proc_status("Threads"),
        **heap.stats(),
    }


def _wake() -> Pcm:
    return clips.piper_speech("Hey Jarvis,")


def _say(text: str) -> Pcm:
    return clips.piper_speech(text)


COMMANDS = (
    "turn on the kitchen light.",
    "turn off the bedroom light.",
    "set the living room light to forty percent.",
    "what time is it?",
    "turn off the fan.",
    "make the hallway light blue.",
)
QUESTIONS = (
    "what is the capital of France?",
    "what color is the sky?",
    "how many legs does a spider have?",
)
# questions whose answers run for seconds: a one-word answer could end before the barge-in is heard
STORIES = (
    "tell me a story about a dragon.",
    "tell me a story about a robot.",
    "tell me a story about the sea.",
)


@dataclass(frozen=True, slots=True, eq=False)
class Variant:
    """One stretch of room audio; a barge-in's ``then`` starts once the reply to ``audio`` is playing
    (as a user interrupts what they hear), so it interrupts however short or slow that reply is."""

    audio: Pcm
    then: Pcm | None = None


def scenes() -> dict[str, tuple[float, list[Variant]]]:
    """Scene kind → (weight, variants)."""
    gap = clips.silence(150)

    def turn(text: str, tail_ms: int) -> Pcm:
        return np.concatenate([clips.silence(400), _wake(), gap, _say(text), clips.silence(tail_ms)])

    return {
        "command": (0.35, [Variant(turn(t, 2500)) for t in COMMANDS]),
        "question": (0.15, [Variant(turn(t, 7000)) for t in QUESTIONS]),
        "silence": (0.12, [Variant(clips.silence(3000))]),
        "noise": (0.08, [Variant(clips.noise(2500, dbfs=-35.0, seed=s)) for s in range(3)]),
        "barge_in": (
            0.12,
            [
                Variant(
                    turn(q, 0),
                    np.concatenate(
                        [clips.silence(BARGE_AFTER_MS), _wake(), gap, _say("stop."), clips.silence(2500)]
                    ),
                )
                for q in STORIES
            ],
        ),
        "follow_up": (
            0.18,
            [
                Variant(
                    np.concatenate(
                        [turn("turn on the kitchen light.", 2200), _say("turn it off."), clips.silence(2500)]
                    )
                ),
                Variant(
                    np.concatenate(
                        [turn("what time is it?", 2500), _say("what is the date today?"), clips.silence(2500)]
                    )
                ),
            ],
        ),
    }


class SceneSource:
    """An endless room: one scene after another (seeded), ``n`` scenes in all. Calls ``on_scene(i, kind)``
    from the capture thread at each scene boundary (cheap). ``reply_started`` is set by whoever watches the
    events (``SoakSink``) when a reply starts playing; a barge-in scene waits for it, in room silence."""

    live = False

    def __init__(
        self,
        table: dict[str, tuple[float, list[Variant]]],
        n: int,
        clock: InputClock,
        on_scene: Callable[[int, str], None],
        seed: int,
        reply_started: threading.Event,
    ) -> None:
        self._rng = random.Random(seed)
        self._kinds = list(table)
        self._weights = [table[k][0] for k in self._kinds]
        self._table = table
        self._n = n
        self._clock = clock
        self._on_scene = on_scene
        self._closed = False
        self._parts = self._stream()
        self._cur: WavSource | None = None
        self.reply_started = reply_started
        self.kinds: list[str] = []

    def _wav(self, pcm: Pcm) -> WavSource:
        return WavSource(pcm, pace="adaptive", clock=self._clock)

    def _stream(self) -> Iterator[WavSource]:
        for i in range(self._n):
            if self._closed:
                return
            kind = self._rng.choices(self._kinds, self._weights)[0]
            variant = self._rng.choice(self._table[kind][1])
            self.kinds.append(kind)
            self._on_scene(i, kind)
            yield self._wav(variant.audio)
            if variant.then is None:
                continue
            # cleared only now: this scene's wake word has replaced any earlier turn, whose late reply
            # must not count, and this question's reply cannot have started (its endpoint needs silence)
            self.reply_started.clear()
            for _ in range(REPLY_WAIT_MS * SAMPLE_RATE // 1000 // FRAME_SAMPLES):
                if self.reply_started.is_set() or self._closed:
                    break
                yield self._wav(np.zeros(FRAME_SAMPLES, np.int16))  # one capture read of room silence
            yield self._wav(variant.then)

    def read(self, n: int) -> Pcm:
        while True:
            if self._cur is None:
                self._cur = next(self._parts, None)
                if self._cur is None:
                    raise SourceExhausted
            try:
                return self._cur.read(n)
            except SourceExhausted:
                self._cur = None

    def close(self) -> None:
        self._closed = True


@dataclass
class SoakSink:
    """Bounded bookkeeping of the event stream: counts, per-turn latency, open turns."""

    counts: dict[str, int] = field(default_factory=dict)
    v2v: list[tuple[int, float]] = field(default_factory=list)  # (scene index, ms)
    statuses: dict[str, int] = field(default_factory=dict)
    open_turns: dict[int, int] = field(default_factory=dict)  # turn id → created ns
    closed: deque[int] = field(default_factory=lambda: deque(maxlen=64))  # late events of ended turns
    longest_turn_s: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)
    scene: int = 0
    reply_started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, event: Event) -> None:
        with self.lock:
            self.counts[event.type] = self.counts.get(event.type, 0) + 1
            tid = event.turn_id
            ends = event.type in ("response.done", "turn.cancelled")
            if tid is not None and tid not in self.open_turns and tid not in self.closed and not ends:
                self.open_turns[tid] = event.ts_ns
            if ends and tid is not None and tid in self.open_turns:
                start = self.open_turns.pop(tid)
                self.closed.append(tid)
                self.longest_turn_s = max(self.longest_turn_s, (event.ts_ns - start) / 1e9)
            if event.type == "response.done" and tid is not None:
                status = str(event.data.get("status"))
                self.statuses[status] = self.statuses.get(status, 0) + 1
                lat = event.data.get("latency")
                v = lat.get("voice_to_voice_ms") if isinstance(lat, dict) else None
                if status == "done" and isinstance(v, int | float):
                    self.v2v.append((self.scene, float(v)))
            if event.type == "response.audio.started":
                self.reply_started.set()
            if event.type == "error" and len(self.errors) < 50:
                self.errors.append(dict(event.data))

    def state(self, state: str) -> None:
        pass


def _failed(inv: dict[str, bool]) -> list[str]:
    return [k for k, ok in inv.items() if not ok]


def rss_floor_growth(rss_mb: list[float]) -> tuple[float, float, float]:
    """(floor at the start, floor at the end, growth %) of post-warm-up RSS samples. The floor is the
    lowest of the first / last quarter (at least 2 samples each): what the daemon returns to between
    turns. Memory kept raises the floor; a sample that lands mid-reply (a decode or synthesis buffer
    pinning freed pages, +25–65 MB) is a spike above it, and two such spikes at the ends once read as
    +6.7 % over a run whose floor moved +0.3 %."""
    k = max(1, min(max(2, len(rss_mb) // 4), len(rss_mb) // 2))
    start, end = min(rss_mb[:k]), min(rss_mb[-k:])
    return start, end, (end - start) / start * 100


def _p95(xs: list[float]) -> float | None:
    return round(float(np.percentile(xs, 95)), 1) if xs else None


def soak(cfg: Config, turns: int, seed: int = 7, engines: Any = None) -> dict[str, Any]:
    """Run the soak in this process; returns the result dict (no files). Used by the bench and the test."""
    from edge_voice.audio.sinks import WavSink
    from edge_voice.runtime.daemon import Daemon, load_engines

    engines = engines or load_engines(cfg)
    table = scenes()
    clock = InputClock()
    sink = SoakSink()
    samples: list[dict[str, float]] = []
    t_start = time.monotonic()
    every = SAMPLE_EVERY if turns >= 10 * SAMPLE_EVERY else 10  # a short soak still gets a curve
    warmup = min(WARMUP_SCENES, turns // 2)

    def on_scene(i: int, _kind: str) -> None:
        sink.scene = i
        if i % every == 0 or i == turns - 1:
            samples.append(
                {
                    "scene": i,
                    "elapsed_s": round(time.monotonic() - t_start, 1),
                    "done": sink.statuses.get("done", 0),
                    **process_sample(),
                }
            )

    source = SceneSource(table, turns, clock, on_scene, seed, sink.reply_started)

    class _NullWav(WavSink):  # paced like a device, keeps nothing (a 1000-turn run must not grow)
        def write(self, pcm: Pcm) -> None:
            super().write(pcm)
            with self._lock:
                self._chunks.clear()
                self.replies.clear()

    out = _NullWav(Path(os.devnull), clock, engines.tts.sample_rate)
    crash = ""
    daemon = Daemon(cfg, engines, source, out, [sink], clock)
    try:
        daemon.run()
    except Exception as exc:  # recorded, not raised: the report says what broke
        crash = f"{type(exc).__name__}: {exc}"
    after_stop = process_sample()  # threads and descriptors released by the shutdown
    post = [s["rss_mb"] for s in samples if s["scene"] >= warmup] or [s["rss_mb"] for s in samples]
    rss_start, rss_end, rss_growth = rss_floor_growth(post)
    lat = [v for _, v in sink.v2v]
    window = min(100, len(lat) // 2)
    first_p95 = _p95(lat[:window])
    last_p95 = _p95(lat[-window:]) if window else None
    drift = (last_p95 - first_p95) / first_p95 * 100 if first_p95 and last_p95 else None
    stuck = len(sink.open_turns) + (1 if daemon.orch.turn is not None else 0)
    kinds = {k: source.kinds.count(k) for k in table}
    result: dict[str, Any] = {
        "scenes": turns,
        "scene_kinds": kinds,
        "wall_s": round(time.monotonic() - t_start, 1),
        "turns_ended": sum(sink.statuses.values()),
        "statuses": sink.statuses,
        "event_counts": dict(sorted(sink.counts.items())),
        "errors": sink.errors,
        "crash": crash,
        "stuck_turns": stuck,
        "longest_turn_s": round(sink.longest_turn_s, 1),
        "rss_mb_after_warmup": rss_start,  # floors, see rss_floor_growth
        "rss_mb_end": rss_end,
        "rss_growth_pct": round(rss_growth, 2),
        "rss_growth_first_to_last_sample_pct": round((post[-1] - post[0]) / post[0] * 100, 2),
        "fds": [s["fds"] for s in samples],
        "threads": [s["threads"] for s in samples],
        "v2v_p95_first_ms": first_p95,
        "v2v_p95_last_ms": last_p95,
        "v2v_p95_window": window,
        "v2v_p95_drift_pct": round(drift, 1) if drift is not None else None,
        "after_stop": after_stop,
        "samples": samples,
        "latency": sink.v2v,
    }
    result["invariants"] = {
        "no_crash": not crash,
        "no_stuck_turn": stuck == 0,
        "rss_growth_below_5pct": rss_growth < 5.0,
        "fds_stable": max(result["fds"][1:] or [0]) - min(result["fds"][1:] or [0]) <= 2,
        "p95_drift_within_10pct": drift is not None and drift <= 10.0,
    }
    return result


def run(cfg: Config, out_dir: Path, turns: int = 1000, seed: int = 7, **_: Any) -> dict[str, Any]:
    import json

    # the ASR budget is for a quiet box; a long soak must not turn load spikes into empty transcripts
    cfg = replace(cfg, asr=replace(cfg.asr, max_decode_ms=max(cfg.asr.max_decode_ms, 10000)))
    result = soak(cfg, turns, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "soak.json").write_text(json.dumps(result, indent=1))
    _plot(result, out_dir / "soak.png")
    summary = {k: v for k, v in result.items() if k not in ("samples", "latency", "fds", "threads")}
    return summary


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    xs = [s["scene"] for s in result["samples"]]
    a.plot(xs, [s["rss_mb"] for s in result["samples"]], marker="o", label="RSS (MB)")
    a.axhline(result["rss_mb_after_warmup"] * 1.05, color="r", ls="--", label="+5 % of post-warm-up floor")
    a.set_ylabel("RSS MB")
    a2 = a.twinx()
    a2.plot(xs, [s["threads"] for s in result["samples"]], color="g", ls=":", label="threads")
    a2.plot(xs, [s["fds"] for s in result["samples"]], color="k", ls=":", label="fds")
    a2.set_ylabel("threads / fds")
    a.legend(loc="upper left")
    a2.legend(loc="lower right")
    lat = result["latency"]
    b.scatter([s for s, _ in lat], [v for _, v in lat], s=6, alpha=0.6, label="voice-to-voice (ms)")
    b.set_xlabel("scene")
    b.set_ylabel("ms")
    b.legend(loc="upper left")
    inv = result["invariants"]
    fig.suptitle(
        f"soak: {result['scenes']} scenes, {result['turns_ended']} turns, RSS growth "
        f"{result['rss_growth_pct']} %, p95 drift {result['v2v_p95_drift_pct']} % — "
        + (
            "all invariants hold"
            if all(inv.values())
            else "FAILED: " + ", ".join(k for k, v in inv.items() if not v)
        )
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
