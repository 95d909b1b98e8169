"""``edge-voice bench answer-levers``: the LLM answer's path after the transcript, stage by stage, no daemon:
the LLM's first token and each later one (the daemon's request: warm prefix, facts, the question), where
each first-chunk rule would cut the first TTS chunk, and Piper's time to that chunk's audio.

Per question and rule: ``first_chunk_ms`` (request → the token that completes the first chunk) and
``piper_ms`` (that chunk → its audio), whose sum is what the answer adds to whisper's transcript in the
daemon (``first_sentence_ms`` + ``tts_first_chunk_ms``). LLM variants (threads) take turns per question.
Run at normal priority under ``flock /tmp/latency.lock``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.bench.asr import QUESTIONS as ASR_QUESTIONS
from edge_voice.bench.asr import stats
from edge_voice.bench.turn import QUESTIONS
from edge_voice.core import chunker
from edge_voice.core.cancel import NEVER
from edge_voice.core.config import Config
from edge_voice.core.conversation import default_facts, prompt_prefix
from edge_voice.engines.llm import build_messages

REPEATS = 3  # Piper runs per chunk (its time varies run to run; the median is kept)


def _rules() -> dict[str, Callable[[], chunker.SentenceChunker]]:
    rules: dict[str, Callable[[], chunker.SentenceChunker]] = {
        "clause, 4 words (default)": lambda: chunker.SentenceChunker(4),
        "clause, 3 words": lambda: chunker.SentenceChunker(3),
    }
    if hasattr(chunker, "PHRASE_BREAK_WORDS"):
        rules["phrase, 3 words"] = lambda: chunker.SentenceChunker(3, phrase_breaks=True)
        rules["phrase, 4 words"] = lambda: chunker.SentenceChunker(4, phrase_breaks=True)
    return rules


def _first_chunk(
    pieces: list[tuple[float, str]], make: Callable[[], chunker.SentenceChunker]
) -> tuple[str, float]:
    c = make()
    for t, piece in pieces:
        out = c.push(piece)
        if out:
            return out[0], t
    rest = c.flush()
    return (rest[0] if rest else ""), pieces[-1][0] if pieces else 0.0


def run(
    cfg: Config, out_dir: Path, threads: str = "1,2", extra: int = 6, n: int = 0, **_: Any
) -> dict[str, Any]:
    from edge_voice.engines.llm import LlamaGenerator
    from edge_voice.engines.tts import PiperSynthesizer

    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = prompt_prefix(cfg.llm)
    gens = {}
    for k in (int(x) for x in str(threads).split(",")):
        g = LlamaGenerator(cfg.llm, cfg.models_path, threads=k)
        g.warm(prefix)
        gens[k] = g
    tts = PiperSynthesizer(cfg.tts, cfg.models_path)
    tts.warm()
    questions = [q[0].upper() + q[1:] for q in (*QUESTIONS, *ASR_QUESTIONS[:extra])][: n or None]
    facts = default_facts()
    rules = _rules()
    rows: list[dict[str, Any]] = []
    piper_cache: dict[str, float] = {}

    def piper_ms(text: str) -> float:
        if text not in piper_cache:
            times = []
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                next(iter(tts.synthesize(text, NEVER)))
                times.append((time.perf_counter() - t0) * 1e3)
            piper_cache[text] = float(np.median(times))
        return piper_cache[text]

    for i, q in enumerate(questions):
        order = list(gens)[i % len(gens) :] + list(gens)[: i % len(gens)]
        for n in order:
            g = gens[n]
            msgs = build_messages(prefix, [], q, facts)
            g.prime(build_messages(prefix, [], "", facts))  # what the daemon primes at the wake word
            t0 = time.perf_counter()
            pieces: list[tuple[float, str]] = []
            for piece in g.stream(msgs, NEVER):
                pieces.append(((time.perf_counter() - t0) * 1e3, piece))
            answer = "".join(p for _, p in pieces)
            st = g.last  # llama.cpp's own split of the first token's wait
            row: dict[str, Any] = {
                "question": q,
                "llm_threads": n,
                "answer": answer.strip(),
                "ttft_ms": round(pieces[0][0], 1) if pieces else None,
                "tokens": len(pieces),
                "prompt_tokens": st.prompt_tokens if st else None,
                "cached_tokens": st.cached_tokens if st else None,
                "prompt_ms": round(st.prompt_ms, 1) if st else None,
                "ms_per_token": round((pieces[-1][0] - pieces[0][0]) / max(1, len(pieces) - 1), 1)
                if pieces
                else None,
            }
            for name, make in rules.items():
                chunk, t = _first_chunk(pieces, make)
                p = piper_ms(chunk) if chunk else 0.0
                row[name] = {
                    "chunk": chunk,
                    "first_chunk_ms": round(t, 1),
                    "piper_ms": round(p, 1),
                    "sum_ms": round(t + p, 1),
                }
            rows.append(row)
    summary: dict[str, Any] = {}
    for n in gens:
        sel = [r for r in rows if r["llm_threads"] == n]
        summary[f"llm_threads_{n}"] = {
            "ttft_ms": stats([r["ttft_ms"] for r in sel if r["ttft_ms"] is not None]),
            "prompt_ms": stats([r["prompt_ms"] for r in sel if r["prompt_ms"] is not None]),
            "prompt_tokens": stats([r["prompt_tokens"] for r in sel if r["prompt_tokens"] is not None]),
            "ms_per_token": stats([r["ms_per_token"] for r in sel if r["ms_per_token"] is not None]),
            **{
                name: {
                    "first_chunk_ms": stats([r[name]["first_chunk_ms"] for r in sel]),
                    "piper_ms": stats([r[name]["piper_ms"] for r in sel]),
                    "sum_ms": stats([r[name]["sum_ms"] for r in sel]),
                    "first_chunk_words_p50": float(np.median([len(r[name]["chunk"].split()) for r in sel])),
                }
                for name in rules
            },
        }
    words = [(len(t.split()), ms) for t, ms in piper_cache.items()]
    result = {
        "bench": "answer-levers",
        "machine": {"cores": os.cpu_count(), "load_at_end": os.getloadavg()},
        "questions": len(questions),
        "summary": summary,
        "piper_ms_by_words": sorted(words),
        "rows": rows,
    }
    (out_dir / "answer-levers.json").write_text(json.dumps(result, indent=2, default=str))
    _plot(result, out_dir / "answer-levers.png")
    for g in gens.values():
        g.close()
    return {"questions": len(questions), "summary": summary}


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels, firsts, pipers = [], [], []
    for var, s in result["summary"].items():
        for name, v in s.items():
            if isinstance(v, dict) and "sum_ms" in v:
                labels.append(f"{var.removeprefix('llm_')}\n{name}")
                firsts.append(v["first_chunk_ms"]["p50"] or 0)
                pipers.append(v["piper_ms"]["p50"] or 0)
    y = np.arange(len(labels))
    ax1.barh(y, firsts, color="tab:blue", label="request → first chunk's text (p50)")
    ax1.barh(y, pipers, left=firsts, color="tab:orange", label="Piper: chunk → audio (p50)")
    ax1.set_yticks(y, labels, fontsize=7)
    ax1.invert_yaxis()
    ax1.set_xlabel("ms")
    ax1.legend(fontsize=8)
    ax1.set_title("LLM answer after the transcript")
    xs = result["piper_ms_by_words"]
    ax2.scatter([w for w, _ in xs], [ms for _, ms in xs], s=12)
    ax2.set_xlabel("words in the chunk")
    ax2.set_ylabel("Piper ms to the chunk's audio")
    ax2.set_title("Piper's cost by chunk length")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
