"""``edge-voice bench asr``: accuracy and latency of whisper.cpp on generated spoken commands, and what a
speculative decode during the end-of-speech silence saves, measured in the same run.

Clips: home commands and questions in six voices (Piper joe at two length scales, espeak-ng en-us, en-gb,
en-us+f3, en-gb+m3), each clean (-60 dBFS floor) and at 10 dB SNR. Each clip is pre-roll + speech + trailing
silence, laid out as the endpointer hands it over; t0 = the last voiced sample.

- without speculation: the decode starts when ``endpoint.silence_end_ms`` of silence confirm the endpoint,
  the transcript is ready at ``silence_end_ms + asr_ms``;
- with speculation: a decode of the audio up to ``endpoint.speculative_silence_ms`` starts then; when the
  endpoint is confirmed its result is used, so the transcript is ready at
  ``max(silence_end_ms, speculative_silence_ms + asr_ms_spec)`` (and at ``speculative_silence_ms +
  asr_ms_spec`` if the fast path commits a complete command early). Both decodes run for real.

WER: word-level Levenshtein after normalisation (lowercase, no punctuation, numbers as words).
"""

from __future__ import annotations

import json
import os
import re
import resource
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.engines.intents import ONES_WORDS, TENS_WORDS

COMMANDS = (
    "Turn on the kitchen light.",
    "Switch off the bedroom light.",
    "Set a timer for five minutes.",
    "Turn off the fan.",
    "Dim the living room light to thirty percent.",
    "Turn on the hallway light.",
    "Switch on the coffee machine.",
    "Cancel the timer.",
    "Turn the volume up.",
    "Set an alarm for seven thirty.",
    "Turn off all the lights.",
    "Make the bedroom light warmer.",
    "Pause the music.",
    "Set a timer for twenty minutes.",
    "Turn on the ceiling fan.",
    "Stop the timer.",
    "Turn off the kitchen lights.",
    "Play some jazz in the living room.",
    "Lock the front door.",
    "Turn the heating down two degrees.",
)
QUESTIONS = (
    "What time is it?",
    "What's the weather like tomorrow?",
    "How long is left on the timer?",
    "What is the capital of France?",
    "What is two plus two?",
    "How many days are in a week?",
    "Who wrote Romeo and Juliet?",
    "What day is it today?",
    "Is the kitchen light on?",
    "How many legs does a spider have?",
    "What is the largest planet in the solar system?",
    "Tell me a fun fact about the moon.",
)
ENGINES = ("piper", "espeak")
VOICES = ("piper:1.0", "espeak:en-us", "piper:1.25", "espeak:en-gb", "espeak:en-us+f3", "espeak:en-gb+m3")
SNR_DB = 10.0

# ------------------------------------------------------------------------------------------------- WER

_ONES, _TENS = ONES_WORDS, TENS_WORDS  # the intent grammar's number words
_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_words(n: int) -> str:
    """0 ≤ n < 1e9 in plain English words (no "and")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((1_000_000, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_words(head)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError(n)  # pragma: no cover


def _ordinal(n: int) -> str:
    words = number_words(n).split()
    last = words[-1]
    words[-1] = _ORDINALS.get(last, last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return " ".join(words)


def normalize(text: str) -> list[str]:
    """Lowercase words without punctuation; digits, times (7:30), ordinals (3rd) and % spelled out."""
    t = text.lower().replace("%", " percent").replace("&", " and ")
    t = re.sub(
        r"\b(\d{1,2}):(\d{2})\b",
        lambda m: number_words(int(m[1])) + ("" if m[2] == "00" else " " + number_words(int(m[2]))),
        t,
    )
    t = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: _ordinal(int(m[1])), t)
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # 1,000
    t = re.sub(r"\d+", lambda m: f" {number_words(int(m[0]))} ", t)
    t = t.replace("-", " ").replace("'", "")
    return re.sub(r"[^a-z0-9 ]", " ", t).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER: total edits / total reference words."""
    edits = sum(edit_distance(normalize(r), normalize(h)) for r, h in zip(refs, hyps, strict=True))
    words = sum(len(normalize(r)) for r in refs)
    return edits / max(1, words)


# ----------------------------------------------------------------------------------------------- clips


def _speech(text: str, voice: str) -> Pcm:
    from edge_voice.audio import clips

    engine, arg = voice.split(":", 1)
    pcm = (
        clips.piper_speech(text, length_scale=float(arg))
        if engine == "piper"
        else clips.espeak_speech(text, arg)
    )
    start, end = clips.voiced_bounds(pcm)  # t0 must be the last voiced sample, not the TTS's own tail
    return pcm[start:end]


def make_clips(cfg: Config, n_commands: int) -> list[dict[str, Any]]:
    """Each spoken text once per condition: (text, kind, voice, snr, pcm, t0 sample)."""
    from edge_voice.audio import clips

    texts = [(t, "command") for t in COMMANDS] + [(t, "question") for t in QUESTIONS]
    # interleave so any n keeps a mix of commands and questions
    order = sorted(range(len(texts)), key=lambda i: (i * 7919) % len(texts))[:n_commands]
    pre, tail = cfg.endpoint.pre_roll_ms, cfg.endpoint.silence_end_ms
    out = []
    for k, i in enumerate(order):
        text, kind = texts[i]
        voice = VOICES[k % len(VOICES)]
        speech = _speech(text, voice)
        clip = clips.compose(
            [("pre", clips.silence(pre)), ("speech", speech), ("tail", clips.silence(tail))], seed=k
        )
        for snr in (None, SNR_DB):
            pcm = clip.pcm if snr is None else clips.mix_at_snr(clip.pcm, snr, seed=100 + k)
            out.append(
                {
                    "text": text,
                    "kind": kind,
                    "voice": voice,
                    "snr_db": snr,
                    "pcm": pcm,
                    "t0": clip.part("speech").end_sample,
                }
            )
    return out


# ----------------------------------------------------------------------------------------------- bench


def rss_mb(field: str = "VmRSS") -> float:
    """Resident set size now (``VmHWM``: its high-water mark so far) in MB; 0 where /proc has none."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def stats(xs: list[float], digits: int = 1) -> dict[str, float | None]:
    """mean, p50, p95, max and n of ``xs`` (None when empty), rounded to ``digits``: the benches' summary."""
    if not xs:
        return {"mean": None, "p50": None, "p95": None, "max": None, "n": 0}
    a = np.asarray(xs, dtype=np.float64)
    return {
        "mean": round(float(a.mean()), digits),
        "p50": round(float(np.percentile(a, 50)), digits),
        "p95": round(float(np.percentile(a, 95)), digits),
        "max": round(float(a.max()), digits),
        "n": len(xs),
    }


def _bench_model(cfg: Config, model: str, clip_set: list[dict[str, Any]]) -> dict[str, Any]:
    from edge_voice.engines.asr import WhisperCppTranscriber
    from edge_voice.models import registry

    asr_cfg = replace(cfg.asr, model=model)
    rss_before = rss_mb()
    t = time.perf_counter()
    asr = WhisperCppTranscriber(asr_cfg, cfg.models_path)
    load_ms = (time.perf_counter() - t) * 1e3
    rss_loaded = rss_mb()
    spec_ms, end_ms = cfg.endpoint.speculative_silence_ms, cfg.endpoint.silence_end_ms
    rows = []
    for c in clip_set:
        t0 = c["t0"]
        spec = asr.decode(c["pcm"][: t0 + spec_ms * SAMPLE_RATE // 1000])
        full = asr.decode(c["pcm"][: t0 + end_ms * SAMPLE_RATE // 1000])
        rows.append(
            {
                "text": c["text"],
                "kind": c["kind"],
                "voice": c["voice"],
                "snr_db": c["snr_db"],
                "audio_ms": full.audio_ms,
                "audio_ctx": full.audio_ctx,
                "transcript": full.text,
                "asr_ms": round(full.decode_ms, 1),
                "steps": full.steps,
                "aborted": full.aborted,
                "spec_transcript": spec.text,
                "spec_asr_ms": round(spec.decode_ms, 1),
                "spec_agrees": normalize(spec.text) == normalize(full.text),
                "eos_to_transcript_ms_without": round(end_ms + full.decode_ms, 1),
                "eos_to_transcript_ms_with": round(max(end_ms, spec_ms + spec.decode_ms), 1),
                "eos_to_transcript_ms_early_commit": round(spec_ms + spec.decode_ms, 1),
                "word_errors": edit_distance(normalize(c["text"]), normalize(full.text)),
                "spec_word_errors": edit_distance(normalize(c["text"]), normalize(spec.text)),
                "ref_words": len(normalize(c["text"])),
            }
        )
    rss_after = rss_mb()

    def sel(snr: float | None) -> list[dict[str, Any]]:
        return [r for r in rows if r["snr_db"] == snr]

    def wer_of(rs: list[dict[str, Any]], key: str = "word_errors") -> float:
        errors, words = sum(int(r[key]) for r in rs), sum(int(r["ref_words"]) for r in rs)
        return round(errors / max(1, words), 4)

    three_s = [r["asr_ms"] for r in rows if 2500 <= r["audio_ms"] <= 3500]
    without = [r["eos_to_transcript_ms_without"] for r in rows]
    with_spec = [r["eos_to_transcript_ms_with"] for r in rows]
    path = registry.resolve(model, cfg.models_path)
    return {
        "model": model,
        "file": path.name,
        "size_mb": round(path.stat().st_size / 1e6, 1),
        "clips": len(rows),
        "wer_clean": wer_of(sel(None)),
        "wer_noisy_10db": wer_of(sel(SNR_DB)),
        "wer_commands_clean": wer_of([r for r in sel(None) if r["kind"] == "command"]),
        "wer_questions_clean": wer_of([r for r in sel(None) if r["kind"] == "question"]),
        "wer_clean_by_engine": {
            e: wer_of([r for r in sel(None) if r["voice"].startswith(e)]) for e in ENGINES
        },
        "wer_noisy_by_engine": {
            e: wer_of([r for r in sel(SNR_DB) if r["voice"].startswith(e)]) for e in ENGINES
        },
        "wer_clean_by_voice": {v: wer_of([r for r in sel(None) if r["voice"] == v]) for v in VOICES},
        "asr_ms": stats([r["asr_ms"] for r in rows]),
        "asr_ms_clean": stats([r["asr_ms"] for r in sel(None)]),
        "asr_ms_noisy": stats([r["asr_ms"] for r in sel(SNR_DB)]),
        "asr_ms_3s_audio": stats(three_s),
        "audio_ms": stats([float(r["audio_ms"]) for r in rows]),
        "aborted": sum(1 for r in rows if r["aborted"]),
        "empty_transcripts": sum(1 for r in rows if not r["transcript"]),
        "speculative": {
            "speculative_silence_ms": spec_ms,
            "silence_end_ms": end_ms,
            "eos_to_transcript_ms_without": stats(without),
            "eos_to_transcript_ms_with": stats(with_spec),
            "eos_to_transcript_ms_early_commit": stats(
                [r["eos_to_transcript_ms_early_commit"] for r in rows]
            ),
            "saved_ms_mean": round(float(np.mean(without)) - float(np.mean(with_spec)), 1),
            "saved_ms_p95": round(float(np.percentile(without, 95) - np.percentile(with_spec, 95)), 1),
            "spec_agrees_with_final": round(sum(r["spec_agrees"] for r in rows) / len(rows), 3),
            "wer_clean": wer_of(sel(None), "spec_word_errors"),  # of the speculative transcripts
            "wer_noisy_10db": wer_of(sel(SNR_DB), "spec_word_errors"),
        },
        "load_ms": round(load_ms, 1),
        "rss_mb": {
            "before_load": round(rss_before, 1),
            "after_load": round(rss_loaded, 1),
            "after_run": round(rss_after, 1),
            "model_delta": round(rss_after - rss_before, 1),
        },
        "rows": rows,
    }


def run(
    cfg: Config, out_dir: Path, n_commands: int = 32, models: tuple[str, ...] = (), **_: Any
) -> dict[str, Any]:
    """Bench ``cfg.asr.model`` (and any extra ``models``) on ``n_commands`` spoken texts × {clean, 10 dB}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    n = max(1, min(n_commands, len(COMMANDS) + len(QUESTIONS)))
    t = time.perf_counter()
    clip_set = make_clips(cfg, n)
    gen_s = time.perf_counter() - t
    names = (cfg.asr.model, *[m for m in models if m != cfg.asr.model])
    results = [_bench_model(cfg, m, clip_set) for m in names]
    result: dict[str, Any] = {
        "bench": "asr",
        "machine": {"cores": os.cpu_count(), "threads": cfg.asr.threads},
        "config": {
            "audio_ctx_floor": cfg.asr.audio_ctx_floor,
            "max_tokens": cfg.asr.max_tokens,
            "max_decode_ms": cfg.asr.max_decode_ms,
            "snr_db": SNR_DB,
            "voices": list(VOICES),
        },
        "texts": n,
        "clip_generation_s": round(gen_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "targets": {"asr_ms_3s_mean": 250, "asr_ms_3s_p95": 400, "wer_clean": 0.10},
        **{k: v for k, v in results[0].items() if k != "rows"},
        "models": {
            r["model"]: {k: v for k, v in r.items() if k not in ("rows", "wer_clean_by_voice")}
            for r in results
        },
        "rows": results[0]["rows"],
    }
    (out_dir / "asr.json").write_text(json.dumps(result, indent=2))
    _plot(results, out_dir / "asr.png")
    return {k: v for k, v in result.items() if k != "rows"}


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.8))
    for res in results:
        for snr, marker in ((None, "o"), (SNR_DB, "x")):
            rs = [r for r in res["rows"] if r["snr_db"] == snr]
            label = f"{res['model']} {'clean' if snr is None else f'{snr:.0f} dB SNR'}"
            ax1.scatter(
                [r["audio_ms"] / 1e3 for r in rs], [r["asr_ms"] for r in rs], marker=marker, s=18, label=label
            )
    ax1.axhline(250, color="grey", ls="--", lw=0.8)
    ax1.set(xlabel="audio decoded (s)", ylabel="asr_ms", title="decode time per clip")
    ax1.legend(fontsize=7)

    main = results[0]
    spec = main["speculative"]
    keys = ("eos_to_transcript_ms_without", "eos_to_transcript_ms_with", "eos_to_transcript_ms_early_commit")
    labels = ("endpoint then ASR", "speculative decode", "speculative + early commit")
    x = np.arange(len(keys))
    ax2.bar(x - 0.2, [spec[k]["mean"] for k in keys], 0.4, label="mean")
    ax2.bar(x + 0.2, [spec[k]["p95"] for k in keys], 0.4, label="p95")
    ax2.set_xticks(x, labels, fontsize=8)
    ax2.set(ylabel="ms after the last voiced sample", title=f"end of speech → transcript ({main['model']})")
    ax2.legend()

    x = np.arange(len(results))
    ax3.bar(x - 0.2, [100 * r["wer_clean"] for r in results], 0.4, label="clean")
    ax3.bar(x + 0.2, [100 * r["wer_noisy_10db"] for r in results], 0.4, label=f"{SNR_DB:.0f} dB SNR")
    ax3.axhline(10, color="grey", ls="--", lw=0.8)
    ax3.set_xticks(x, [r["model"] for r in results], fontsize=8)
    ax3.set(ylabel="WER (%)", title="word error rate")
    ax3.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
