"""``edge-voice bench turn``: spoken turns through the real daemon from one WAV, and the same turns run
sequentially (endpoint wait → full ASR → full answer → full TTS → play), in the same run.

The daemon's numbers come from its own ``response.done`` latency breakdown (t0 = last voiced sample);
the sequential baseline runs the same engines one after another on the same utterance audio.
"""

from __future__ import annotations

import gc
import json
import resource
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.bench.asr import rss_mb
from edge_voice.core.config import Config
from edge_voice.core.conversation import prompt_prefix
from edge_voice.core.messages import ChatMessage
from edge_voice.core.vocabulary import Latency

COMMANDS = (
    "turn on the kitchen light.",
    "switch off the bedroom light.",
    "set a timer for five minutes.",
    "what time is it?",
    "turn off the fan.",
    "set the living room light to forty percent.",
    "turn the volume up.",
    "cancel the timer.",
    "turn on the hallway light.",
    "make the bedroom light blue.",
    "what is the date today?",
    "turn off the coffee machine.",
)
QUESTIONS = (
    "what is the capital of France?",
    "what is two plus two?",
    "what is the capital of Japan?",
    "how many days are in a week?",
    "what color is the sky?",
    "who wrote Romeo and Juliet?",
    "what is the largest planet in the solar system?",
    "how many legs does a spider have?",
    "what is water made of?",
    "tell me a fun fact about the moon.",
)
STAGES = tuple(k for k in Latency if k != Latency.WAKE_TO_ACK)  # the per-stage breakdown


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    return round(float(np.percentile(np.asarray(xs, dtype=np.float64), q)), 1)


def build_session(
    gap_ms: int, texts: Sequence[tuple[str, str]] | None = None
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One WAV of "Hey Jarvis, <text>" turns; ``texts`` = (text, kind) pairs, default every command and
    question above."""
    from edge_voice.audio import clips

    segments: list[tuple[str, np.ndarray]] = [("lead", clips.silence(1000))]
    turns: list[dict[str, Any]] = []
    if texts is None:
        texts = [(t, "command") for t in COMMANDS] + [(t, "question") for t in QUESTIONS]
    for i, (text, kind) in enumerate(texts):
        speech = clips.piper_speech(text, length_scale=1.0 if i % 2 else 1.1)
        segments += [
            (f"wake{i}", clips.piper_speech("Hey Jarvis,")),
            (f"gap{i}", clips.silence(150)),
            (f"cmd{i}", speech),
            (f"after{i}", clips.silence(gap_ms)),
        ]
        turns.append({"text": text, "kind": kind, "speech": speech})
    clip = clips.compose(segments)
    return clip.pcm, turns


class _RecordingLlm:
    """Records each request the daemon streams and what came back (bench instrumentation, not a fake),
    so the sequential pass can ask the same question with the same prompt and get the same answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[tuple[ChatMessage, ...], str]] = []
        self._next = 0  # calls before this one were claimed by earlier turns

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def notify(self) -> Any:  # the daemon wires fallback notifications to the engine, not to us
        return getattr(self.inner, "notify", None)

    @notify.setter
    def notify(self, fn: Any) -> None:
        self.inner.notify = fn

    def stream(self, messages: Sequence[ChatMessage], cancel: Any) -> Iterator[str]:
        pieces: list[str] = []
        try:
            for piece in self.inner.stream(messages, cancel):
                pieces.append(piece)
                yield piece
        finally:
            self.calls.append((tuple(messages), "".join(pieces)))

    def prompt_for(self, reply: str) -> tuple[ChatMessage, ...] | None:
        """The request whose answer the daemon published as ``reply``: the first such call after the
        previous turn's (turns are asked in order; cancelled speculative calls in between are skipped)."""
        for i in range(self._next, len(self.calls)):
            messages, text = self.calls[i]
            if text.strip() == reply:
                self._next = i + 1
                return messages
        return None


def _sequential(
    cfg: Config, engines: Any, speech: np.ndarray, prompt: tuple[ChatMessage, ...] | None = None
) -> dict[str, Any]:
    """The plain cascade: wait the full endpoint, then each stage to completion, then play. ``prompt``:
    the daemon's own request for this turn (history and facts included), so both passes say the same."""
    from edge_voice.audio.clips import silence
    from edge_voice.core.cancel import CancelToken

    audio = np.concatenate([silence(cfg.endpoint.pre_roll_ms), speech, silence(cfg.endpoint.silence_end_ms)])
    t = time.perf_counter()
    text = engines.asr.transcribe(audio, CancelToken()).text
    t_asr = time.perf_counter()
    outcome = engines.intents.match(text) if engines.intents is not None and prompt is None else None
    if outcome is not None:
        reply = outcome.reply
    else:
        msgs = prompt or (*prompt_prefix(cfg.llm), ChatMessage("user", text))
        reply = "".join(engines.llm.stream(msgs, CancelToken()))
    t_answer = time.perf_counter()
    samples = sum(len(c) for c in engines.tts.synthesize(reply, CancelToken()))
    t_tts = time.perf_counter()
    return {
        "asr_ms": (t_asr - t) * 1000,
        "answer_ms": (t_answer - t_asr) * 1000,
        "tts_ms": (t_tts - t_answer) * 1000,
        "voice_to_voice_ms": cfg.endpoint.silence_end_ms + (t_tts - t) * 1000,
        "reply_s": samples / engines.tts.sample_rate,
        "route": "intent" if outcome is not None else "llm",
        "reply": reply,
        "transcript": text,
        "same_prompt": prompt is not None,
    }


def _sentences(text: str) -> int:
    return sum(text.count(c) for c in ".!?")


def run(cfg: Config, out_dir: Path, gap_ms: int = 16000, **_: Any) -> dict[str, Any]:
    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock, WavSource
    from edge_voice.integrations.sinks import MemorySink
    from edge_voice.runtime.daemon import Daemon, load_engines

    out_dir.mkdir(parents=True, exist_ok=True)
    # follow-up windows would turn the next "Hey Jarvis" into a follow-up turn; keep turns independent
    cfg = replace(cfg, conversation=replace(cfg.conversation, follow_up_window_ms=0))
    pcm, turns = build_session(gap_ms)
    from edge_voice.audio import clips

    clips._piper_voice.cache_clear()  # the test-speech voice is not part of the daemon's memory
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # "5": VmHWM restarts from now (not the clip making)
        f.write("5")
    rss_before_engines = rss_mb()
    engines = load_engines(cfg)
    recorder = _RecordingLlm(engines.llm)
    engines.llm = recorder
    clock = InputClock()
    source = WavSource(pcm, pace="adaptive", clock=clock)
    sink = WavSink(out_dir / "turn-replies.wav", clock, engines.tts.sample_rate)
    memory = MemorySink()
    t_run = time.perf_counter()
    Daemon(cfg, engines, source, sink, [memory], clock).run()
    wall_s = time.perf_counter() - t_run
    rss_after_pipeline = rss_mb()
    peak_after_pipeline = rss_mb("VmHWM")  # before the sequential pass synthesises whole answers

    done = [e for e in memory.of("response.done") if e.data.get("status") == "done"]
    rows: list[dict[str, Any]] = []
    for ev in done:
        lat = ev.data.get("latency")
        assert isinstance(lat, dict)
        rows.append(
            {
                "turn_id": ev.turn_id,
                "transcript": ev.data.get("transcript"),
                "route": ev.data.get("route"),
                "reply": ev.data.get("reply"),
                "speculative": ev.data.get("speculative"),
                **lat,
            }
        )

    engines.llm = recorder.inner
    # the daemon's turn i answers spoken turn i when every turn was answered; an LLM turn is then
    # replayed with the daemon's own prompt, so both passes speak the same answer
    paired = len(rows) == len(turns)
    seq = []
    for i, t in enumerate(turns):
        row = rows[i] if paired else None
        prompt = recorder.prompt_for(str(row["reply"])) if row and row["route"] == "llm" else None
        seq.append(dict(_sequential(cfg, engines, t["speech"], prompt), text=t["text"], kind=t["kind"]))
        if row is not None:
            row["sequential_voice_to_voice_ms"] = round(seq[-1]["voice_to_voice_ms"], 1)

    def summary(route: str) -> dict[str, Any]:
        sel = [r for r in rows if r["route"] == route]
        return {
            "turns": len(sel),
            **{f"{k}_p50": _pct([r[k] for r in sel if r.get(k) is not None], 50) for k in STAGES},
            **{f"{k}_p95": _pct([r[k] for r in sel if r.get(k) is not None], 95) for k in STAGES},
        }

    seq_llm = [s for s in seq if s["route"] == "llm"]
    seq_multi = [s for s in seq_llm if _sentences(s["reply"]) >= 2]
    # multi-sentence answers asked both ways with the daemon's own prompt
    multi_pairs = [
        (r["sequential_voice_to_voice_ms"], r["voice_to_voice_ms"])
        for r, s in zip(rows, seq, strict=False)
        if paired and s["same_prompt"] and _sentences(s["reply"]) >= 2 and r["voice_to_voice_ms"]
    ]
    pipe_llm = [
        r["voice_to_voice_ms"] for r in rows if r["route"] == "llm" and r["voice_to_voice_ms"] is not None
    ]
    pipe_cmd = [r["voice_to_voice_ms"] for r in rows if r["route"] == "intent" and r["voice_to_voice_ms"]]
    seq_all = [s["voice_to_voice_ms"] for s in seq]
    pipe_all = pipe_llm + pipe_cmd
    result: dict[str, Any] = {
        "bench": "turn",
        "machine": {"cores": __import__("os").cpu_count()},
        "turns_spoken": len(turns),
        "turns_answered": len(rows),
        "wall_s": round(wall_s, 1),
        "intent": summary("intent"),
        "llm": summary("llm"),
        "sequential": {
            "voice_to_voice_ms_p50": _pct(seq_all, 50),
            "voice_to_voice_ms_p95": _pct(seq_all, 95),
            "llm_voice_to_voice_ms_p50": _pct([s["voice_to_voice_ms"] for s in seq_llm], 50),
            "multi_sentence_voice_to_voice_ms_p50": _pct([s["voice_to_voice_ms"] for s in seq_multi], 50),
            "command_voice_to_voice_ms_p50": _pct(
                [s["voice_to_voice_ms"] for s in seq if s["route"] == "intent"], 50
            ),
        },
        "overlap_gain": {
            "all_p50": round((_pct(seq_all, 50) or 0) / (_pct(pipe_all, 50) or 1), 2),
            "llm_p50": round(
                (_pct([s["voice_to_voice_ms"] for s in seq_llm], 50) or 0) / (_pct(pipe_llm, 50) or 1), 2
            ),
            "multi_sentence_p50": round(
                (_pct([s["voice_to_voice_ms"] for s in seq_multi], 50) or 0) / (_pct(pipe_llm, 50) or 1), 2
            ),
            # per turn, the daemon's own prompt both ways: sequential / pipelined (a fresh evaluation can
            # still drift the later words of the answer from the cached one)
            "multi_sentence_same_prompt_p50": _pct([a / b for a, b in multi_pairs], 50),
            "multi_sentence_same_prompt_turns": len(multi_pairs),
        },
        "rss_mb": round(max(rss_after_pipeline, rss_mb()), 1),
        "rss_before_engines_mb": round(rss_before_engines, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_pipelined_mb": round(peak_after_pipeline, 1),
        "load_ms": engines.load_ms,
        "rows": rows,
        "sequential_rows": [{k: v for k, v in s.items()} for s in seq],
    }
    (out_dir / "turn.json").write_text(json.dumps(result, indent=2, default=str))
    _plot(result, rows, seq, out_dir / "turn.png")
    return {k: v for k, v in result.items() if k not in ("rows", "sequential_rows")}


def _plot(result: dict[str, Any], rows: list[dict[str, Any]], seq: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels = [s.removesuffix("_ms") for s in STAGES]
    x = np.arange(len(STAGES))
    for off, route, color in ((-0.2, "intent", "tab:green"), (0.2, "llm", "tab:blue")):
        vals = [result[route].get(f"{k}_p50") or 0 for k in STAGES]
        ax1.bar(x + off, vals, 0.4, label=f"{route} (p50)", color=color)
    ax1.set_xticks(x, labels, rotation=30, ha="right")
    ax1.set_ylabel("ms")
    ax1.set_title("Pipelined daemon: per-stage latency (p50)")
    ax1.legend()
    pipe = {
        "intent": [r["voice_to_voice_ms"] for r in rows if r["route"] == "intent"],
        "llm": [r["voice_to_voice_ms"] for r in rows if r["route"] == "llm"],
    }
    sq = {
        "intent": [s["voice_to_voice_ms"] for s in seq if s["route"] == "intent"],
        "llm": [s["voice_to_voice_ms"] for s in seq if s["route"] == "llm"],
    }
    data = [pipe["intent"], sq["intent"], pipe["llm"], sq["llm"]]
    ax2.boxplot(
        [d or [0] for d in data],
        tick_labels=[
            "command\npipelined",
            "command\nsequential",
            "question\npipelined",
            "question\nsequential",
        ],
    )
    ax2.set_ylabel("end of speech → first reply sample (ms)")
    gain = result["overlap_gain"]
    ax2.set_title(
        f"Voice-to-voice, same turns, one run\n(gain: all {gain['all_p50']}×, multi-sentence "
        f"{gain['multi_sentence_p50']}×, per same-prompt answer {gain['multi_sentence_same_prompt_p50']}×)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
