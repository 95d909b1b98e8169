"""``edge-voice bench load``: spoken turns with the box idle and with one core kept busy by another process,
in the same run, for ``service.adapt_to_load = false`` (fixed threads, spinning OpenMP waits, the LLM at
``llm.nice``: the default until session 14) and ``true`` (threads follow the free cores; the default).
The JSON's top-level figures are the shipped default's (``shipped``: the variant whose ``adapt_to_load``
is ``ServiceConfig``'s default); the other variant is kept beside it as the before.

Each variant runs in its own process (OpenMP reads its wait policy once, when it loads). In each, one
WAV of "Hey Jarvis, <command or question>" turns goes through the real daemon; every text is spoken twice,
once idle and once busy, in ABBA order, so idle and busy turns see the same background: the bench's box
is shared, and "idle" means only "without our hog". The hog is a separate Python process spinning on one
core, started by the bench, resumed (SIGCONT) as a busy turn's wake word begins and paused (SIGSTOP) as
an idle turn's begins.

A lost turn: no ``response.done`` with status ``done`` and a transcript for a spoken turn (an empty
transcript, a failed stage, a reply cut by the next turn, a wake word missed). Daemon turns are matched
to spoken ones by where their wake word was heard. Writes ``load.json`` (+ ``load-<variant>.json``
per variant) and ``load.png``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.bench.turn import COMMANDS, QUESTIONS, STAGES, _pct
from edge_voice.core.config import Config, ServiceConfig
from edge_voice.core.events import Event
from edge_voice.core.vocabulary import EventType, Latency, Stage
from edge_voice.engines.asr import FreeCores

N_COMMANDS, N_QUESTIONS = 4, 3  # each spoken idle and busy, in two runs: 28 turns per variant
GAP_MS = {"command": 8000, "question": 16000}  # silence after a turn: room for its whole reply
# questions the skills cannot answer (the capital of France is a skill's): the LLM's own turns
LLM_QUESTIONS = QUESTIONS[4:]
VARIANTS = {"baseline": False, "adaptive": True}  # service.adapt_to_load


class _Hog:
    """One core's worth of another process's work, paused until a busy turn resumes it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.busy = False

    def set(self, busy: bool) -> None:
        if busy != self.busy:
            os.kill(self.proc.pid, signal.SIGCONT if busy else signal.SIGSTOP)
            self.busy = busy

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class _CountedCores:
    """The ASR's free-core meter, its every answer counted by whether the hog was running (the answers
    are what the decodes' thread counts follow: 2 free with only niced jobs beside us, note 270)."""

    def __init__(self, inner: FreeCores, hog: _Hog) -> None:
        self.inner, self.hog = inner, hog
        self.seen: dict[str, dict[int, int]] = {"idle": {}, "busy": {}}

    def free(self) -> int:
        n = self.inner.free()
        seen = self.seen["busy" if self.hog.busy else "idle"]
        seen[n] = seen.get(n, 0) + 1
        return n


class _TurnSink:
    """Which spoken turn each daemon turn is: the input position its wake word was detected at (inside
    that turn's own segment: a slow turn's ``response.done`` may come after the next wake word)."""

    def __init__(self, now_sample: Any) -> None:
        self.now_sample = now_sample
        self.woke: dict[int, int] = {}  # turn_id -> input sample at wake
        self.done: dict[int, Event] = {}

    def emit(self, event: Event) -> None:
        if event.type == EventType.WAKE_DETECTED and event.turn_id is not None:
            self.woke.setdefault(event.turn_id, self.now_sample())
        elif event.type == EventType.RESPONSE_DONE and event.turn_id is not None:
            self.done[event.turn_id] = event

    def state(self, state: Any) -> None:
        pass


def _session(texts: list[tuple[str, str, bool]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    from edge_voice.audio import clips

    segments: list[tuple[str, np.ndarray]] = [("lead", clips.silence(1000))]
    turns, pos = [], len(segments[0][1])
    for i, (text, kind, busy) in enumerate(texts):
        wake, speech = clips.piper_speech("Hey Jarvis,"), clips.piper_speech(text)
        segments += [(f"wake{i}", wake), (f"gap{i}", clips.silence(150)), (f"cmd{i}", speech)]
        segments.append((f"after{i}", clips.silence(GAP_MS[kind])))
        turns.append({"text": text, "kind": kind, "busy": busy, "start": pos})
        pos += sum(len(s) for _, s in segments[-4:])
    return clips.compose(segments).pcm, turns


def texts(commands: int = N_COMMANDS, questions: int = N_QUESTIONS) -> list[tuple[str, str, bool]]:
    """Every text twice, idle and busy, in ABBA order (idle-busy, busy-idle, ...)."""
    asked = [(t, "question") for t in LLM_QUESTIONS[:questions]]
    picks = [(t, "command") for t in COMMANDS[:commands]] + asked
    out = []
    for k, (text, kind) in enumerate(picks):
        first_busy = k % 2 == 1
        out += [(text, kind, first_busy), (text, kind, not first_busy)]
    return out


def run_variant(
    cfg: Config, adapt: bool, out_dir: Path, spoken: list[tuple[str, str, bool]]
) -> dict[str, Any]:
    """One variant's turns, in this process (``service.adapt_to_load`` = ``adapt``)."""
    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock, WavSource
    from edge_voice.engines.asr import WhisperCppTranscriber
    from edge_voice.runtime.daemon import Daemon, load_engines

    cfg = replace(
        cfg,
        conversation=replace(cfg.conversation, follow_up_window_ms=0),  # each "Hey Jarvis" a new turn
        service=replace(cfg.service, adapt_to_load=adapt),
    )
    pcm, turns = _session(spoken)
    hog = _Hog()
    try:
        engines = load_engines(cfg)  # idle: both variants load (and measure free cores) without the hog
        counted = None
        if isinstance(engines.asr, WhisperCppTranscriber) and engines.asr.cores is not None:
            counted = engines.asr.cores = _CountedCores(engines.asr.cores, hog)
        clock = InputClock()
        source = WavSource(pcm, pace="adaptive", clock=clock)
        sink = _TurnSink(clock.now_sample)
        stop = threading.Event()
        busy_wall = [0.0]
        hog_cpu0 = hog.cpu_s()

        def toggle() -> None:
            i, t_busy = 0, None
            while not stop.wait(0.005):
                while i < len(turns) and clock.now_sample() >= turns[i]["start"]:
                    hog.set(turns[i]["busy"])
                    if turns[i]["busy"] and t_busy is None:
                        t_busy = time.monotonic()
                    elif not turns[i]["busy"] and t_busy is not None:
                        busy_wall[0] += time.monotonic() - t_busy
                        t_busy = None
                    i += 1
            if t_busy is not None:
                busy_wall[0] += time.monotonic() - t_busy

        toggler = threading.Thread(target=toggle, name="hog-toggle", daemon=True)
        toggler.start()
        t0 = time.perf_counter()
        speaker = WavSink(out_dir / "load-replies.wav", clock, engines.tts.sample_rate)  # paced; not saved
        Daemon(cfg, engines, source, speaker, [sink], clock).run()
        wall_s = time.perf_counter() - t0
        stop.set()
        toggler.join()
        hog_share = (hog.cpu_s() - hog_cpu0) / busy_wall[0] if busy_wall[0] else 0.0
    finally:
        hog.close()

    starts = [t["start"] for t in turns] + [len(pcm) + 10**12]
    rows = []
    for i, t in enumerate(turns):
        ids = [tid for tid, pos in sink.woke.items() if starts[i] <= pos < starts[i + 1]]
        mine = [sink.done[tid] for tid in ids if tid in sink.done]
        ok = [ev for ev in mine if ev.data.get("status") == "done" and str(ev.data.get("transcript") or "")]
        ev = ok[0] if ok else (mine[0] if mine else None)
        lat = ev.data.get("latency") if ev is not None else None
        rows.append(
            {
                "text": t["text"],
                "kind": t["kind"],
                "busy": t["busy"],
                "lost": not ok,
                "status": ev.data.get("status") if ev is not None else None,
                "transcript": ev.data.get("transcript") if ev is not None else None,
                "route": ev.data.get("route") if ev is not None else None,
                **(lat if isinstance(lat, dict) else {}),
            }
        )
    return {
        "wall_s": round(wall_s, 1),
        "hog_cpu_share_while_busy": round(hog_share, 2),
        # the meter's answers before each ASR decode (speculative ones too), by condition: {cores: times}
        "asr_free_cores": counted.seen if counted is not None else None,
        "rows": rows,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def stages(sel: list[dict[str, Any]]) -> dict[str, float | None]:
        return {f"{k}_p50": _pct([r[k] for r in sel if r.get(k) is not None], 50) for k in STAGES}

    out: dict[str, Any] = {}
    for cond, busy in (("idle", False), ("busy", True)):
        sel = [r for r in rows if r["busy"] == busy and not r["lost"]]
        out[f"lost_turns_{cond}"] = sum(1 for r in rows if r["busy"] == busy and r["lost"])
        out[f"turns_{cond}"] = sum(1 for r in rows if r["busy"] == busy)
        out[f"command_{cond}"] = stages([r for r in sel if r["route"] == Stage.INTENT])
        out[f"llm_{cond}"] = stages([r for r in sel if r["route"] == Stage.LLM])
    v2v = f"{Latency.VOICE_TO_VOICE}_p50"
    for kind in ("command", "llm"):
        idle, busy = out[f"{kind}_idle"][v2v], out[f"{kind}_busy"][v2v]
        out[f"{kind}_p50_ratio_busy_vs_idle"] = round(busy / idle, 2) if idle and busy else None
    return out


def shipped_variant() -> str:
    """The variant the product ships: the one with ``ServiceConfig``'s default ``adapt_to_load``."""
    default = ServiceConfig().adapt_to_load
    return next(name for name, adapt in VARIANTS.items() if adapt == default)


def run(
    cfg: Config,
    out_dir: Path,
    variant: str = "both",
    commands: int = N_COMMANDS,
    questions: int = N_QUESTIONS,
    note: str = "shared box: other engineers' jobs ran throughout",
    **_: Any,
) -> dict[str, Any]:
    """``--opt commands=N questions=N``: how many of each to speak (each twice); ``variant``: one only;
    ``note``: the conditions of the run, kept in the JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spoken = texts(commands, questions)
    if variant in VARIANTS:  # a child: one variant, in this process
        result = run_variant(cfg, VARIANTS[variant], out_dir, spoken)
        result.update(variant=variant, adapt_to_load=VARIANTS[variant], **summarize(result["rows"]))
        (out_dir / f"load-{variant}.json").write_text(json.dumps(result, indent=2, default=str))
        return {k: v for k, v in result.items() if k != "rows"}
    # variants in ABBA order too (baseline, adaptive, adaptive, baseline), each speaking every text idle
    # and busy: both variants see the same background on average, not one the busier half of the run
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    extra: dict[str, dict[str, list[float]]] = {name: {"wall_s": [], "hog": []} for name in VARIANTS}
    free: dict[str, dict[str, dict[str, int]]] = {name: {"idle": {}, "busy": {}} for name in VARIANTS}
    for name in (*VARIANTS, *reversed(VARIANTS)):
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)  # each child decides (the baseline: OpenMP's default spin)
        # the child's CLI sets OpenMP's wait policy from the config before any engine loads: give it the
        # variant's setting, not the default's
        env["EDGE_VOICE_SERVICE__ADAPT_TO_LOAD"] = str(VARIANTS[name]).lower()
        cmd = [sys.executable, "-m", "edge_voice", "bench", "load", "--out", str(out_dir)]
        opts = [f"variant={name}", f"commands={commands}", f"questions={questions}"]
        subprocess.run(
            [*cmd, *(a for o in opts for a in ("--opt", o))], check=True, env=env, stdout=subprocess.DEVNULL
        )
        part = json.loads((out_dir / f"load-{name}.json").read_text())
        rows[name] += part["rows"]
        extra[name]["wall_s"].append(part["wall_s"])
        extra[name]["hog"].append(part["hog_cpu_share_while_busy"])
        for cond, counts in (part.get("asr_free_cores") or {}).items():
            for n, times in counts.items():  # JSON keys: strings
                free[name][cond][n] = free[name][cond].get(n, 0) + times
    results: dict[str, dict[str, Any]] = {}
    for name in VARIANTS:
        results[name] = {
            "adapt_to_load": VARIANTS[name],
            "wall_s": round(sum(extra[name]["wall_s"]), 1),
            "hog_cpu_share_while_busy": round(sum(extra[name]["hog"]) / 2, 2),
            "asr_free_cores": free[name] if VARIANTS[name] else None,
            **summarize(rows[name]),
            "rows": rows[name],
        }
        (out_dir / f"load-{name}.json").write_text(json.dumps(results[name], indent=2, default=str))
    summary: dict[str, Any] = {
        "bench": "load",
        "machine": {"cores": os.cpu_count(), "note": note},
        "method": "each text spoken idle and busy (ABBA) in one WAV through the real daemon; busy = a "
        "Python busy-loop process the bench resumes for busy turns; the variants run twice each, in ABBA "
        "order (baseline, adaptive, adaptive, baseline)",
        "turns_per_variant": 2 * len(spoken),
        "targets": {"command_p50_ratio": 1.5, "llm_p50_ratio": 1.5, "lost_turns": 0},
    }
    for name, res in results.items():
        summary[name] = {k: v for k, v in res.items() if k not in ("rows", "variant")}
    shipped = shipped_variant()
    summary["shipped"] = shipped  # the top-level figures; the other variant's are under its name
    for key in (
        "command_p50_ratio_busy_vs_idle",
        "llm_p50_ratio_busy_vs_idle",
        "lost_turns_idle",
        "lost_turns_busy",
        "command_idle",  # per-stage p50s
        "command_busy",
        "llm_idle",
        "llm_busy",
    ):
        summary[key] = summary[shipped][key]
    (out_dir / "load.json").write_text(json.dumps(summary, indent=2, default=str))
    _plot(summary, results, out_dir / "load.png")
    return summary


def _plot(summary: dict[str, Any], results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    v2v = str(Latency.VOICE_TO_VOICE)
    for ax, route, title in ((axes[0], Stage.INTENT, "commands"), (axes[1], Stage.LLM, "LLM answers")):
        data, labels = [], []
        for name, res in results.items():
            for cond, busy in (("idle", False), ("busy", True)):
                sel = [r[v2v] for r in res["rows"] if r["busy"] == busy and r["route"] == route and v2v in r]
                lost = sum(1 for r in res["rows"] if r["busy"] == busy and r["lost"])
                data.append(sel or [0])
                shipped = " (default)" if name == summary.get("shipped") else ""
                labels.append(f"{name}{shipped}\n{cond} (lost {lost})")
        ax.boxplot(data, tick_labels=labels)
        ax.set_ylabel("end of speech → first reply sample (ms)")
        kind = "command" if route == Stage.INTENT else "llm"
        ratios = ", ".join(f"{n} {summary[n][f'{kind}_p50_ratio_busy_vs_idle']}×" for n in results)
        ax.set_title(f"{title}: busy/idle p50 {ratios}")
    fig.suptitle("One core kept busy by another process (shared box: 'idle' = without the hog)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
