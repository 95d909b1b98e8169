"""``edge-voice bench turn-end``: how well Smart Turn v3.2 (``edge_voice/engines/turn_end.py``) tells a
finished utterance from one the user has paused in, on speech made by our own TTS, and what a call costs.

Clips (each: 300 ms pre-roll, the speech down to its last sound above the -60 dBFS floor, then the silence
the daemon would have seen at decision time — fewer ms than the daemon has, whose VAD lets go 50–85 ms after
the last sound, so the figures are, if anything, pessimistic for the longer pauses):
- **complete**: home commands and questions (the ASR bench's texts), synthesised whole;
- **unfinished, cut**: a sentence synthesised with a comma at the user's pause ("what is the, capital of
  France") and cut where that pause starts: the words before it carry the prosody of a sentence that goes on;
- **unfinished, fragment**: the words before the pause synthesised on their own ("what is the"): the TTS
  ends them like a finished sentence (falling pitch), the hardest case for an acoustic model.

Voices: Piper joe at length scales 1.0 and 1.2, espeak-ng en-us, en-gb, en-us+f3, en-gb+m3; each clip clean
(-60 dBFS floor) and at 10 dB SNR (white noise over the whole clip, silence included). Decision points:
64 ms (the speculative decode starts), 160 ms (``endpoint.commit_silence_ms``) and 500 ms
(``endpoint.silence_end_ms``) of silence after the last voiced sample.

Reported per decision point and threshold: accuracy, false cut-offs (unfinished scored ≥ threshold) and
complete held (complete scored < threshold); the same for the words and the model together (the turn ends
only if ``core.endofturn.unfinished`` passes the words too); inference time per call (features + model) on
one thread; and, as a sanity check on real speech, alsa-utils' recorded voice prompts.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_voice.bench.asr import stats
from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, Pcm

COMPLETE = (
    "Turn on the kitchen light.",
    "Switch off the bedroom light.",
    "Set a timer for ten minutes.",
    "Turn off the fan.",
    "Dim the living room light to thirty percent.",
    "Switch on the coffee machine.",
    "Cancel the timer.",
    "Set an alarm for seven thirty.",
    "Turn off all the lights.",
    "Play some jazz in the living room.",
    "Turn on the kitchen light and turn off the fan.",
    "What is the capital of France?",
    "What time is it?",
    "How many days are in a week?",
    "Who wrote Romeo and Juliet?",
    "What is two plus two?",
    "Tell me a fun fact about the moon.",
    "How long is left on the timer?",
)
# (the words before the pause, what the user would have said after it)
UNFINISHED = (
    ("Turn on the kitchen light and", "turn off the fan."),
    ("What is the", "capital of France?"),
    ("Set a timer for", "ten minutes."),
    ("What is the capital", "of France?"),
    ("Turn off the", "bedroom light."),
    ("Switch on the", "coffee machine."),
    ("Dim the living room light to", "thirty percent."),
    ("How many days are", "in a week?"),
    ("Who wrote", "Romeo and Juliet?"),
    ("Turn on the hallway light and the", "fan."),
    ("Set an alarm for", "seven thirty."),
    ("What is two plus", "two?"),
    ("Play some jazz in the", "living room."),
    ("Tell me a fun fact about", "the moon."),
)
VOICES = ("piper:1.0", "piper:1.2", "espeak:en-us", "espeak:en-gb", "espeak:en-us+f3", "espeak:en-gb+m3")
SILENCES_MS = (64, 160, 500)
THRESHOLDS = (0.3, 0.5, 0.7)
GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
SNR_DB = 10.0
PRE_ROLL_MS = 300
GAP_DBFS = -45.0  # below this (10 ms windows) the clean TTS output is a pause
END_DBFS = -60.0  # the clips' noise floor: quieter than this is silence
WIN = SAMPLE_RATE // 100


def _tts(text: str, voice: str) -> Pcm:
    from edge_voice.audio import clips

    engine, arg = voice.split(":", 1)
    if engine == "piper":
        return clips.piper_speech(text, length_scale=float(arg))
    return clips.espeak_speech(text, arg)


def _levels(pcm: Pcm, win: int = WIN) -> npt.NDArray[np.float64]:
    """dBFS of each 10 ms window."""
    n = len(pcm) // win
    frames = pcm[: n * win].astype(np.float64).reshape(n, win)
    return np.asarray(20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) / 32768.0 + 1e-12))


def trim(pcm: Pcm) -> Pcm:
    """The speech without the TTS's leading and trailing silence, keeping every sound above the clip's
    -60 dBFS floor: a word's quiet release (Piper's "light" decays for ~50 ms below -40 dBFS) is part of
    how a finished word sounds, and cutting it makes any word sound cut off."""
    loud = np.nonzero(_levels(pcm) > END_DBFS)[0]
    if len(loud) == 0:
        return pcm[:0]
    return pcm[int(loud[0]) * WIN : (int(loud[-1]) + 1) * WIN]


def _gaps(pcm: Pcm) -> list[tuple[int, int]]:
    """(first, end) 10 ms windows of every run quieter than GAP_DBFS."""
    quiet = _levels(pcm) < GAP_DBFS
    out, i, n = [], 0, len(quiet)
    while i < n:
        if quiet[i]:
            j = i
            while j < n and quiet[j]:
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


def cut_at_pause(prefix: str, rest: str, voice: str) -> Pcm | None:
    """``"prefix, rest"`` synthesised, cut where the comma's pause goes quiet (the longest pause ≥ 120 ms
    starting within ±40 % of where ``prefix`` alone ends; the cut keeps the last word's release down to
    -60 dBFS). None if there is no such pause."""
    whole = _tts(f"{prefix}, {rest}", voice)
    expect = len(trim(_tts(prefix, voice))) / WIN  # windows
    near = [(a, b) for a, b in _gaps(whole) if b - a >= 12 and 0.6 * expect <= a <= 1.4 * expect]
    if not near:
        return None
    a, b = max(near, key=lambda g: g[1] - g[0])
    levels = _levels(whole)
    quiet = [k for k in range(a, b) if levels[k] <= END_DBFS]
    end = quiet[0] if quiet else a + int(np.argmin(levels[a:b]))
    return trim(whole[: end * WIN])


def make_clips() -> tuple[list[dict[str, Any]], int]:
    """Every (text, voice) as trimmed speech: kind complete | cut | fragment. Also how many cuts had no
    pause to cut at (skipped)."""
    out: list[dict[str, Any]] = []
    skipped = 0
    for voice in VOICES:
        for text in COMPLETE:
            out.append({"kind": "complete", "text": text, "voice": voice, "speech": trim(_tts(text, voice))})
        for prefix, rest in UNFINISHED:
            out.append(
                {"kind": "fragment", "text": prefix, "voice": voice, "speech": trim(_tts(prefix, voice))}
            )
            cut = cut_at_pause(prefix, rest, voice)
            if cut is None or len(cut) == 0:
                skipped += 1
                continue
            out.append({"kind": "cut", "text": f"{prefix} | {rest}", "voice": voice, "speech": cut})
    return out, skipped


def utterance(speech: Pcm, silence_ms: int, snr_db: float | None, seed: int) -> Pcm:
    """Pre-roll + speech + ``silence_ms``, as the endpointer holds it at that moment."""
    from edge_voice.audio import clips

    clip = clips.compose(
        [("pre", clips.silence(PRE_ROLL_MS)), ("speech", speech), ("tail", clips.silence(silence_ms))],
        seed=seed,
    )
    return clip.pcm if snr_db is None else clips.mix_at_snr(clip.pcm, snr_db, seed=1000 + seed)


def score(rows: list[dict[str, Any]], threshold: float, unfinished: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, false cut-offs (unfinished ≥ threshold) and complete held (complete < threshold)."""
    comp = [r["p"] for r in rows if r["kind"] == "complete"]
    unf = [r["p"] for r in rows if r["kind"] in unfinished]
    false_cut = sum(p >= threshold for p in unf)
    held = sum(p < threshold for p in comp)
    n = len(comp) + len(unf)
    return {
        "threshold": threshold,
        "accuracy": round((n - false_cut - held) / max(1, n), 3),
        "false_cutoff": round(false_cut / max(1, len(unf)), 3),
        "complete_held": round(held / max(1, len(comp)), 3),
        "n_complete": len(comp),
        "n_unfinished": len(unf),
    }


def with_words(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """The words and the model together: a turn ends iff its words are not unfinished
    (``core.endofturn.unfinished`` on the words said so far, standing in for the transcript) and the model
    says p ≥ ``threshold`` (0: the words alone). False cut-offs among the unfinished (cut + fragment),
    complete held among the complete."""
    from edge_voice.core.endofturn import unfinished

    def ends(r: dict[str, Any]) -> bool:
        return not unfinished(r["text"].split(" | ")[0]) and r["p"] >= threshold

    comp = [r for r in rows if r["kind"] == "complete"]
    unf = [r for r in rows if r["kind"] != "complete"]
    return {
        "threshold": threshold,
        "false_cutoff": round(sum(map(ends, unf)) / max(1, len(unf)), 3),
        "complete_held": round(sum(not ends(r) for r in comp) / max(1, len(comp)), 3),
        "n_complete": len(comp),
        "n_unfinished": len(unf),
    }


def human_speech(detector: Any) -> list[dict[str, Any]]:
    """A sanity check on real speech: Debian's alsa-utils voice prompts ("Front Center", …), whole (a
    finished phrase), at each decision point. Empty if the files are not installed."""
    from edge_voice.audio.wavio import read_wav_16k

    out = []
    for path in sorted(Path("/usr/share/sounds/alsa").glob("*.wav")):
        pcm = trim(read_wav_16k(path))
        out.append(
            {
                "file": path.name,
                "p": {
                    str(s): round(detector.complete(utterance(pcm, s, None, seed=7)), 3) for s in SILENCES_MS
                },
            }
        )
    return out


def run(cfg: Config, out_dir: Path, **_: Any) -> dict[str, Any]:
    from edge_voice.engines.turn_end import SmartTurnDetector, SmartTurnSettings, features

    out_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    speech, skipped = make_clips()
    gen_s = time.perf_counter() - t
    tcfg = SmartTurnSettings()
    t = time.perf_counter()
    detector = SmartTurnDetector(tcfg, cfg.models_path)
    load_ms = (time.perf_counter() - t) * 1e3

    rows: list[dict[str, Any]] = []
    call_ms: list[float] = []
    feat_ms: list[float] = []
    for i, c in enumerate(speech):
        for snr in (None, SNR_DB):
            for silence_ms in SILENCES_MS:
                pcm = utterance(c["speech"], silence_ms, snr, seed=i)
                t = time.perf_counter()
                features(pcm)
                feat_ms.append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                p = detector.complete(pcm)
                call_ms.append((time.perf_counter() - t) * 1e3)
                rows.append(
                    {
                        "kind": c["kind"],
                        "text": c["text"],
                        "voice": c["voice"],
                        "snr_db": snr,
                        "silence_ms": silence_ms,
                        "speech_ms": len(c["speech"]) * 1000 // SAMPLE_RATE,
                        "p": round(p, 4),
                    }
                )

    def sel(**kw: Any) -> list[dict[str, Any]]:
        return [r for r in rows if all(r[k] == v for k, v in kw.items())]

    both = ("cut", "fragment")
    by_silence: dict[str, Any] = {}
    for s in SILENCES_MS:
        rs = sel(silence_ms=s)
        by_silence[str(s)] = {
            "all_unfinished": [score(rs, th, both) for th in THRESHOLDS],
            "cut": [score(rs, th, ("cut",)) for th in THRESHOLDS],
            "fragment": [score(rs, th, ("fragment",)) for th in THRESHOLDS],
            "clean": [score(sel(silence_ms=s, snr_db=None), th, both) for th in THRESHOLDS],
            "noisy_10db": [score(sel(silence_ms=s, snr_db=SNR_DB), th, both) for th in THRESHOLDS],
            "by_engine": {
                e: [score([r for r in rs if r["voice"].startswith(e)], th, both) for th in THRESHOLDS]
                for e in ("piper", "espeak")
            },
            "grid": [score(rs, th, both) for th in GRID],
            "mean_p": {
                k: round(float(np.mean([r["p"] for r in rs if r["kind"] == k])), 3)
                for k in ("complete", *both)
            },
        }
    words_and_model = {
        str(s): {
            "words_only": with_words(sel(silence_ms=s), 0.0),
            "grid": [with_words(sel(silence_ms=s), th) for th in GRID],
        }
        for s in SILENCES_MS
    }
    per_text: dict[str, list[float]] = {}
    for r in sel(silence_ms=160):
        per_text.setdefault(f"{r['kind']}: {r['text']}", []).append(r["p"])
    result: dict[str, Any] = {
        "bench": "turn-end",
        "model": detector.path.name,
        "machine": {
            "cores": os.cpu_count(),
            "threads": tcfg.threads,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],  # the box is shared: timing context
        },
        "voices": list(VOICES),
        "snr_db": SNR_DB,
        "silences_ms": list(SILENCES_MS),
        "clips": {
            "complete": sum(c["kind"] == "complete" for c in speech),
            "cut": sum(c["kind"] == "cut" for c in speech),
            "fragment": sum(c["kind"] == "fragment" for c in speech),
            "cut_skipped_no_pause": skipped,
            "calls": len(rows),
        },
        "clip_generation_s": round(gen_s, 1),
        "load_ms": round(load_ms, 1),
        "call_ms": stats(call_ms, 2),
        "features_ms": stats(feat_ms, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "by_silence_ms": by_silence,
        "words_and_model": words_and_model,
        "human_speech_alsa": human_speech(detector),
        "mean_p_at_160ms_by_text": {k: round(float(np.mean(v)), 3) for k, v in sorted(per_text.items())},
        "rows": rows,
    }
    (out_dir / "turn-end.json").write_text(json.dumps(result, indent=2))
    _plot(result, out_dir / "turn-end.png")
    brief = ("rows", "mean_p_at_160ms_by_text", "words_and_model", "human_speech_alsa")
    return {k: v for k, v in result.items() if k not in brief} | {
        "by_silence_ms": {s: {"all_unfinished": v["all_unfinished"]} for s, v in by_silence.items()}
    }


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.8))
    kinds = (("complete", "tab:green"), ("cut", "tab:red"), ("fragment", "tab:orange"))
    for j, s in enumerate(SILENCES_MS):
        for k, (kind, colour) in enumerate(kinds):
            ps = [r["p"] for r in rows if r["silence_ms"] == s and r["kind"] == kind]
            x = j * 4 + k + np.random.default_rng(k).uniform(-0.3, 0.3, len(ps))
            ax1.scatter(x, ps, s=5, color=colour, alpha=0.5, label=kind if j == 0 else None)
    ax1.set_xticks([j * 4 + 1 for j in range(len(SILENCES_MS))], [f"{s} ms silence" for s in SILENCES_MS])
    ax1.set(ylabel="P(turn complete)", title="Smart Turn v3.2 on our TTS (clean + 10 dB)")
    ax1.legend(fontsize=8)

    for s, style in zip(SILENCES_MS, (":", "--", "-"), strict=True):
        grid = result["by_silence_ms"][str(s)]["grid"]
        th = [g["threshold"] for g in grid]
        ax2.plot(th, [100 * g["false_cutoff"] for g in grid], "r" + style, label=f"false cut-off, {s} ms")
        ax2.plot(th, [100 * g["complete_held"] for g in grid], "g" + style, label=f"complete held, {s} ms")
    both = result["words_and_model"]["160"]["grid"]
    th = [g["threshold"] for g in both]
    ax2.plot(
        th, [100 * g["false_cutoff"] for g in both], "m-", lw=2, label="false cut-off, words + model, 160 ms"
    )
    ax2.plot(
        th, [100 * g["complete_held"] for g in both], "c-", lw=2, label="complete held, words + model, 160 ms"
    )
    ax2.set(xlabel="threshold", ylabel="%", title="error rates vs threshold (cut + fragment)")
    ax2.legend(fontsize=7)

    call = result["call_ms"]
    ax3.bar(["p50", "p95"], [call["p50"], call["p95"]], color="tab:blue")
    ax3.set(
        ylabel="ms per call", title=f"inference (features + model), {result['machine']['threads']} thread"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
