"""Bench the answering engines in one run: LLM cold vs warm time-to-first-token, decode speed at 1 vs 2
threads, Piper's first-chunk time and real-time factor — idle, and while the LLM decodes on another
thread (on 2 cores the two fight for the CPU; this shows how much, and which thread count to pick).

Writes ``answer.json`` and ``answer.png`` under ``out_dir``; returns the summary dict.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import Config, LlmConfig
from edge_voice.core.conversation import prompt_prefix
from edge_voice.core.messages import ChatMessage
from edge_voice.engines.llm import LlamaGenerator, build_messages
from edge_voice.engines.tts import PiperSynthesizer

log = logging.getLogger(__name__)

QUESTIONS = (
    "What is the capital of France?",
    "What is the boiling point of water?",
    "What is photosynthesis?",
    "How many days are in a week?",
    "How can I sleep better?",
    "What is the capital of Japan?",
)
LONG_PROMPT = "Tell me a long story about a dragon who lives in a castle."
SENTENCES = (
    "Turning on the kitchen light.",
    "The capital of France is Paris.",
    "Photosynthesis is how plants turn sunlight into food,",
    "To sleep better, go to bed at the same time every night.",
    "The boiling point of water is one hundred degrees Celsius.",
    "A week has seven days.",
)
THREAD_COUNTS = (1, 2)
CONTENTION_CASES = ((1, 0), (1, 10), (2, 0))  # (LLM threads, LLM nice) while TTS synthesises


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else -1.0


def _ttfts(llm: LlamaGenerator, prefix: Sequence[ChatMessage], questions: tuple[str, ...]) -> list[float]:
    out = []
    for q in questions:
        for _ in llm.stream(build_messages(prefix, [], q), NEVER):
            pass
        if llm.last is not None and llm.last.ttft_ms >= 0:
            out.append(llm.last.ttft_ms)
    return out


def _decode_rate(llm: LlamaGenerator, prefix: Sequence[ChatMessage], runs: int = 3) -> list[float]:
    rates = []
    for _ in range(runs):
        for _ in llm.stream(build_messages(prefix, [], LONG_PROMPT), NEVER):
            pass
        if llm.last is not None and llm.last.decode_tok_s > 0:
            rates.append(llm.last.decode_tok_s)
    return rates


def bench_llm(cfg: LlmConfig) -> dict[str, Any]:
    sys_prompt = prompt_prefix(cfg)  # system prompt and examples, as the daemon sends them
    # Cold: a fresh model, no warm-up; the first turn evaluates the whole system prompt.
    cold = LlamaGenerator(cfg)
    cold_ttft = _ttfts(cold, sys_prompt, QUESTIONS[:1])
    cold_stats = cold.last
    cold.close()
    # Warm: the same, but warm() at start-up; every turn reuses the system prompt's KV cache.
    warm = LlamaGenerator(cfg)
    warm.warm(sys_prompt)
    warm_ms = warm.warm_stats.total_ms if warm.warm_stats else -1.0
    warm_ttft = _ttfts(warm, sys_prompt, QUESTIONS)
    warm_stats = warm.last
    warm.close()
    by_threads: dict[str, dict[str, float]] = {}
    for n in THREAD_COUNTS:
        llm = LlamaGenerator(cfg, threads=n)
        llm.warm(sys_prompt)
        ttft = _ttfts(llm, sys_prompt, QUESTIONS)
        rates = _decode_rate(llm, sys_prompt)
        by_threads[str(n)] = {
            "warm_ttft_ms_p50": _p50(ttft),
            "decode_tok_s_p50": _p50(rates),
            "decode_tok_s_min": round(min(rates), 1) if rates else -1.0,
        }
        llm.close()
    return {
        "model": cfg.model,
        "threads": cfg.threads,
        "max_tokens": cfg.max_tokens,
        "cold_ttft_ms": round(cold_ttft[0], 1) if cold_ttft else -1.0,
        "cold_prompt_tokens": cold_stats.prompt_tokens if cold_stats else -1,
        "warm_up_ms": round(warm_ms, 1),
        "first_turn_after_warm_ttft_ms": round(warm_ttft[0], 1) if warm_ttft else -1.0,
        "warm_ttft_ms_p50": _p50(warm_ttft),
        "warm_ttft_ms_max": round(max(warm_ttft), 1) if warm_ttft else -1.0,
        "warm_prompt_tokens_last": warm_stats.prompt_tokens if warm_stats else -1,
        "warm_cached_tokens_last": warm_stats.cached_tokens if warm_stats else -1,
        "by_threads": by_threads,
    }


def _tts_run(tts: PiperSynthesizer) -> tuple[list[float], list[float]]:
    """(first-chunk ms, real-time factor) per sentence."""
    first, rtf = [], []
    for text in SENTENCES:
        t0 = time.monotonic()
        samples = 0
        for chunk in tts.synthesize(text, NEVER):
            if samples == 0:
                first.append((time.monotonic() - t0) * 1000)
            samples += len(chunk)
        elapsed = time.monotonic() - t0
        if samples:
            rtf.append(elapsed / (samples / tts.sample_rate))
    return first, rtf


def _with_llm_decoding(tts: PiperSynthesizer, cfg: LlmConfig, threads: int, nice: int) -> dict[str, float]:
    """Run the TTS sentences while another thread keeps the LLM decoding a long answer."""
    llm = LlamaGenerator(dataclasses.replace(cfg, max_tokens=256, nice=nice), threads=threads)
    llm.warm(prompt_prefix(cfg))
    stop = CancelToken()
    decoding = threading.Event()
    piece_times: list[float] = []  # monotonic time of every token: the decode rate inside the TTS window

    def decode() -> None:
        while not stop.cancelled:
            for _ in llm.stream(build_messages(prompt_prefix(cfg), [], LONG_PROMPT), stop):
                piece_times.append(time.monotonic())
                decoding.set()

    worker = threading.Thread(target=decode, name="bench-llm", daemon=True)
    worker.start()
    decoding.wait(10.0)
    time.sleep(0.2)  # well into decoding, past the prompt
    t_start = time.monotonic()
    first, rtf = _tts_run(tts)
    t_end = time.monotonic()
    stop.cancel()
    worker.join(timeout=10.0)
    llm.close()
    tokens = sum(1 for t in piece_times if t_start <= t <= t_end)
    return {
        "llm_threads": threads,
        "llm_nice": nice,
        "tts_first_chunk_ms_p50": _p50(first),
        "tts_rtf_p50": round(statistics.median(rtf), 3) if rtf else -1.0,
        "llm_tok_s_during": round(tokens / max(1e-3, t_end - t_start), 1),
    }


def bench_tts(cfg: Config) -> dict[str, Any]:
    tts = PiperSynthesizer(cfg.tts)
    warm_ms = tts.warm()
    first, rtf = _tts_run(tts)
    contention = [_with_llm_decoding(tts, cfg.llm, threads, nice) for threads, nice in CONTENTION_CASES]
    return {
        "voice": cfg.tts.voice,
        "threads": cfg.tts.threads,
        "sample_rate": tts.sample_rate,
        "load_ms": round(tts.load_ms, 1),
        "warm_up_ms": round(warm_ms, 1),
        "first_chunk_ms_p50": _p50(first),
        "first_chunk_ms_max": round(max(first), 1) if first else -1.0,
        "rtf_p50": round(statistics.median(rtf), 3) if rtf else -1.0,
        "while_llm_decodes": contention,
    }


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    llm, tts = summary["llm"], summary["tts"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    ax = axes[0]
    labels = ["cold", "first after warm", "warm p50"]
    values = [llm["cold_ttft_ms"], llm["first_turn_after_warm_ttft_ms"], llm["warm_ttft_ms_p50"]]
    ax.bar(labels, values, color=["#c44", "#48c", "#48c"])
    ax.axhline(150, ls="--", c="k", lw=1, label="target 150 ms")
    ax.set_title(f"LLM time to first token ({llm['threads']} thread)")
    ax.set_ylabel("ms")
    ax.legend()
    ax = axes[1]
    threads = list(llm["by_threads"])
    ax.bar(
        [f"{t} thread" for t in threads],
        [llm["by_threads"][t]["decode_tok_s_p50"] for t in threads],
        color="#6a6",
        label="idle",
    )
    during = {
        str(c["llm_threads"]): c["llm_tok_s_during"] for c in tts["while_llm_decodes"] if not c["llm_nice"]
    }
    ax.plot(
        [f"{t} thread" for t in threads],
        [during.get(t, 0) for t in threads],
        "o",
        c="#c44",
        label="while TTS runs",
    )
    ax.set_title("LLM decode speed")
    ax.set_ylabel("tokens/s")
    ax.legend()
    ax = axes[2]
    labels = ["idle"] + [f"LLM {c['llm_threads']}t\nnice {c['llm_nice']}" for c in tts["while_llm_decodes"]]
    values = [tts["first_chunk_ms_p50"]] + [c["tts_first_chunk_ms_p50"] for c in tts["while_llm_decodes"]]
    ax.bar(labels, values, color=["#48c"] + ["#c84"] * len(tts["while_llm_decodes"]))
    ax.axhline(100, ls="--", c="k", lw=1, label="target 100 ms")
    ax.set_title(f"Piper first chunk ({tts['threads']} thread), p50")
    ax.set_ylabel("ms")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(cfg: Config, out_dir: Path, **opts: Any) -> dict[str, Any]:
    """Run the whole answer bench (~1 minute on 2 cores) and write answer.json + answer.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    summary: dict[str, Any] = {"bench": "answer", "llm": bench_llm(cfg.llm), "tts": bench_tts(cfg)}
    summary["seconds"] = round(time.monotonic() - t0, 1)
    (out_dir / "answer.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _plot(summary, out_dir / "answer.png")
    log.info("bench answer: %s", json.dumps(summary))
    return summary
