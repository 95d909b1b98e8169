"""``edge-voice bench wake-micro``: microWakeWord (pymicro-wakeword's models, from PyPI) as a second wake
detector, alone and fused with openWakeWord, on ``bench wake``'s positives and negatives.

Both detectors see the same audio: the positives as ``bench wake``'s one stream (2 s warm-up, every clip
followed by its gap), the negatives per 30 s segment from a reset detector with the first ``warmup_ms``
dropped. openWakeWord's per-hop scores are ``bench wake``'s cache (run it first); microWakeWord runs here
in 10 ms feature steps (its inference every 30 ms, its output the mean of its sliding window, as
pymicro-wakeword computes it), and its highest output within each 80 ms hop is kept on openWakeWord's hop
grid, so one hit/false-accept rule scores everything (``wake._fires``/``_recall``: a hit is a fire from the
phrase start to 1 s after its end; fires within the refractory time are one).

Fusions measured, per word:
- ``either``: either detector fires, as ``wake.micro`` wires it (``listen/micro.py``): a microWakeWord
  output over its cutoff (its own rule) raises the word's score to 1.0 for ``patience`` hops, and
  ``WakeGate``'s rule (openWakeWord's threshold, patience, refractory) decides on the fused scores; every
  pair of thresholds, and the cutoffs with openWakeWord at its shipped threshold (``with_oww_default``).
- ``mean``: the mean of the two scores per hop through ``WakeGate``'s rule (threshold, patience).
A point is chosen as ``bench wake`` chooses: the best recall whose FA/hour ≤ the target at the point and one
step lower on each threshold (a margin), then fewer false accepts.

Output: ``wake-micro.json`` + ``wake-micro.png`` (per word: recall vs FA/hour for each detector and fusion,
recall per condition and per voice family at the chosen points, CPU per 10 ms step).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.bench import wake as wb
from edge_voice.bench import wake_corpus as corpus
from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.listen.micro import latch
from edge_voice.listen.wake import HOP_SAMPLES

log = logging.getLogger(__name__)

MICRO_WORDS = ("hey_jarvis", "alexa", "hey_mycroft", "okay_nabu")  # what pymicro-wakeword 2.5.0 carries
MICRO_VERSION = 1  # bump when the microWakeWord scoring changes (cached per segment)
STEP = 160  # microWakeWord's feature step: 10 ms
CUTOFFS = tuple(
    round(float(c), 3)
    for c in np.concatenate([np.arange(0.1, 0.9, 0.05), np.arange(0.9, 0.99, 0.01), [0.99, 0.995, 0.999]])
)
# openWakeWord's thresholds in the fused grids (every shipped default is among them)
OWW_THRESHOLDS = (0.1, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.475, 0.5, 0.6, 0.7, 0.8, 0.9)


class MicroScorer:
    """pymicro-wakeword's streaming models on one feature stream: per 10 ms step each word's output (the
    mean of the model's sliding window; 0 until the window is full)."""

    def __init__(self, words: tuple[str, ...]) -> None:
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

        self.words = words
        self.models = [MicroWakeWord.from_builtin(Model(w)) for w in words]
        self.features = MicroWakeWordFeatures()
        self.step_ns: list[int] = []

    def reset(self) -> None:
        self.features.reset()
        for m in self.models:
            m.reset()

    def process(self, pcm: Pcm) -> np.ndarray:
        """(steps × words) outputs for ``pcm`` (a whole stream: one row per 10 ms of features)."""
        rows: list[list[float]] = []
        last = [0.0] * len(self.models)
        feats = iter(self.features.process_streaming(np.ascontiguousarray(pcm, np.int16).tobytes()))
        while True:
            t = time.thread_time_ns()
            f = next(feats, None)
            if f is None:
                break
            for j, m in enumerate(self.models):
                p = m.process_streaming_prob(f)
                if p is not None and not m._features:  # an inference ran (every 3rd step): a new output
                    last[j] = p
            self.step_ns.append(time.thread_time_ns() - t)
            rows.append(list(last))
        return np.asarray(rows, np.float32).reshape(-1, len(self.models))


def to_hops(steps: np.ndarray, n_samples: int) -> np.ndarray:
    """Per 80 ms hop (openWakeWord's grid) the highest 10 ms-step output ending within it."""
    n = n_samples // HOP_SAMPLES
    out = np.zeros((n, steps.shape[1]), np.float32)
    ends = (np.arange(len(steps)) + 1) * STEP + 320  # a step's 30 ms window ends 20 ms after its hop
    hop = (ends - 1) // HOP_SAMPLES
    keep = hop < n
    for j in range(steps.shape[1]):
        np.maximum.at(out[:, j], hop[keep], steps[keep, j])
    return out


def _positive_stream(pos: list[corpus.Positive], block: int) -> tuple[Pcm, dict[str, Any]]:
    """``bench wake``'s positive stream and the phrase spans within it (per word, condition, family)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    cond: dict[tuple[str, str], list[tuple[int, int]]] = {}
    fam: dict[tuple[str, str], list[tuple[int, int]]] = {}
    offset = 2 * SAMPLE_RATE
    parts: list[Pcm] = [np.zeros(offset, np.int16)]
    for p in pos:
        pcm = np.concatenate([p.pcm, np.zeros(wb.CLIP_GAP + (-(len(p.pcm) + wb.CLIP_GAP)) % block, np.int16)])
        parts.append(pcm)
        span = (offset + p.start, offset + p.end)
        spans.setdefault(p.word, []).append(span)
        cond.setdefault((p.word, p.condition), []).append(span)
        fam.setdefault((p.word, p.voice.split()[0]), []).append(span)
        offset += len(pcm)
    return np.concatenate(parts), {"word": spans, "condition": cond, "family": fam}


def _oww_scores(cfg: Config, pos: list[corpus.Positive], segments: list[corpus.Segment]) -> Any:
    """``bench wake``'s cached openWakeWord scores (all five words, the daemon's capture block)."""
    block = cfg.audio.frame_samples
    digest = hashlib.sha256(f"{wb.WORDS}:{block}:{wb.SCORES_VERSION}".encode())
    for p in corpus.positives(wb.WORDS):
        digest.update(p.pcm.tobytes())
    f = corpus.cache_dir() / "scores" / f"positives-{digest.hexdigest()[:12]}.npy"
    if not f.exists():
        raise SystemExit("bench wake-micro: run `edge-voice bench wake` first (its scores are reused)")
    ps = np.load(f)
    warm = -(-cfg.wake.warmup_ms * SAMPLE_RATE // 1000 // HOP_SAMPLES)
    tag = hashlib.sha256(f"{wb.WORDS}:{block}:{warm}:{wb.SCORES_VERSION}".encode()).hexdigest()[:12]
    neg = [np.load(corpus.cache_dir() / "scores" / f"{s.key}-{tag}.npy") for s in segments]
    return ps, neg, warm


def _recall_by(fires: np.ndarray, spans: dict[tuple[str, str], list[Any]], word: str) -> dict[str, float]:
    return {k[1]: round(wb._recall(fires, v), 4) for k, v in spans.items() if k[0] == word}


def _pick(points: list[dict[str, Any]], a: str, b: str | None) -> dict[str, Any]:
    """The best recall with FA/hour ≤ the target at the point and one step lower on each threshold."""
    index = {(p[a], p[b] if b else None): p for p in points}
    av = sorted({p[a] for p in points})
    bv = sorted({p[b] for p in points}) if b else [None]
    ok = []
    for p in points:
        i = av.index(p[a])
        j = bv.index(p[b] if b else None)
        near = [p]
        if i > 0:
            near.append(index[av[i - 1], p[b] if b else None])
        if b and j > 0:
            near.append(index[p[a], bv[j - 1]])
        if (i > 0 or len(av) == 1) and all(q["fa_per_hour"] <= wb.TARGET_FA_PER_HOUR for q in near):
            ok.append(p)
    if not ok:
        return min(points, key=lambda p: (p["fa_per_hour"], -p["recall"]))
    return max(ok, key=lambda p: (p["recall"], -p["fa_per_hour"], p[a], p[b] if b else 0))


def run(cfg: Config, out_dir: Path, hours: str | int = "3.25", **_: Any) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    segments = corpus.plan(float(hours))
    words = MICRO_WORDS
    pos_all = corpus.positives(wb.WORDS)
    block = cfg.audio.frame_samples
    refractory = cfg.wake.refractory_ms * SAMPLE_RATE // 1000
    ps_oww, neg_oww, warm = _oww_scores(cfg, pos_all, segments)
    stream, spans = _positive_stream(pos_all, block)
    cols = [wb.WORDS.index(w) for w in words]

    scorer = MicroScorer(words)
    t = time.monotonic()
    key = hashlib.sha256(f"{words}:{MICRO_VERSION}".encode() + stream.tobytes()).hexdigest()[:12]
    f = corpus.cache_dir() / "scores" / f"micro-positives-{key}.npy"
    if not f.exists():
        scorer.reset()
        np.save(f, to_hops(scorer.process(stream), len(stream)))
    ps_mww = np.load(f)
    n = min(len(ps_mww), len(ps_oww))
    ps_mww, ps_o = ps_mww[:n], ps_oww[:n][:, cols]
    neg_m: list[np.ndarray] = []
    neg_o: list[np.ndarray] = []
    kinds: list[tuple[str, int, int]] = []
    at = 0
    for i, (seg, sc) in enumerate(zip(segments, neg_oww, strict=True)):
        g = corpus.cache_dir() / "scores" / f"{seg.key}-micro{MICRO_VERSION}.npy"
        if not g.exists():
            pcm = corpus.read_segment(seg)
            scorer.reset()
            np.save(g, to_hops(scorer.process(pcm), len(pcm)))
        m = np.load(g)[warm:]
        k = min(len(m), len(sc))
        neg_m.append(m[:k])
        neg_o.append(sc[:k][:, cols])
        kinds.append((seg.kind, at, at + k))
        at += k
        if i % 20 == 0:
            log.info("bench wake-micro: %d/%d segments", i, len(segments))
    score_s = time.monotonic() - t
    ns_mww, ns_o = np.concatenate(neg_m), np.concatenate(neg_o)
    hours_ = len(ns_o) * HOP_SAMPLES / SAMPLE_RATE / 3600

    def fires(sc: np.ndarray, thr: float, pat: int) -> np.ndarray:
        return wb._fires(sc, thr, pat, refractory)

    def point(pf: np.ndarray, nf: np.ndarray, word: str, **kw: Any) -> dict[str, Any]:
        return {
            **kw,
            "recall": round(wb._recall(pf, spans["word"][word]), 4),
            "false_accepts": len(nf),
            "fa_per_hour": round(len(nf) / hours_, 3),
        }

    def detail(pf: np.ndarray, nf: np.ndarray, word: str) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for kind, a, b in kinds:
            by_kind[kind] = by_kind.get(kind, 0) + int(np.sum((nf >= a) & (nf < b)))
        return {
            "recall_by_condition": _recall_by(pf, spans["condition"], word),
            "recall_by_voice_family": _recall_by(pf, spans["family"], word),
            "false_accepts_by_kind": {k: v for k, v in by_kind.items() if v},
        }

    per_word: dict[str, Any] = {}
    patience = cfg.wake.patience
    for j, word in enumerate(words):
        po, no, pm, nm = ps_o[:, j], ns_o[:, j], ps_mww[:, j], ns_mww[:, j]
        thr0 = cfg.wake.threshold_for(word)
        base_p, base_n = fires(po, thr0, patience), fires(no, thr0, patience)
        baseline = {
            **point(base_p, base_n, word, threshold=thr0, patience=patience),
            **detail(base_p, base_n, word),
        }
        # microWakeWord alone (its own rule: output > cutoff, no patience: the sliding mean is its smoothing)
        m_pos = {c: fires(pm, c + 1e-6, 1) for c in CUTOFFS}
        m_neg = {c: fires(nm, c + 1e-6, 1) for c in CUTOFFS}
        alone = [point(m_pos[c], m_neg[c], word, cutoff=c) for c in CUTOFFS]
        a_pick = _pick(alone, "cutoff", None)
        c0 = a_pick["cutoff"]
        alone_pick = {**a_pick, **detail(m_pos[c0], m_neg[c0], word)}
        # either fires, as the daemon wires it (listen/micro.py): a microWakeWord output over the cutoff
        # raises the word to 1.0 for ``patience`` hops, then WakeGate's rule on the fused scores
        m_pos_hit = {c: latch(pm > c, patience) for c in CUTOFFS}
        m_neg_hit = {c: latch(nm > c, patience) for c in CUTOFFS}

        def wired(o: np.ndarray, raised: np.ndarray, tt: float) -> np.ndarray:
            return fires(np.where(raised, np.float32(1.0), o), tt, patience)

        either = []
        for tt in OWW_THRESHOLDS:
            for c in CUTOFFS:
                pf, nf = wired(po, m_pos_hit[c], tt), wired(no, m_neg_hit[c], tt)
                either.append(point(pf, nf, word, oww_threshold=tt, cutoff=c, oww_patience=patience))
        e_pick = _pick(either, "oww_threshold", "cutoff")
        tt, c = e_pick["oww_threshold"], e_pick["cutoff"]
        pf, nf = wired(po, m_pos_hit[c], tt), wired(no, m_neg_hit[c], tt)
        either_pick = {**e_pick, **detail(pf, nf, word)}
        # either fires, openWakeWord kept at its shipped default
        fixed = [p for p in either if p["oww_threshold"] == thr0] if thr0 in OWW_THRESHOLDS else []
        fixed_pick = _pick(fixed, "cutoff", None) if fixed else None
        if fixed_pick is not None:
            c1 = fixed_pick["cutoff"]
            pf, nf = wired(po, m_pos_hit[c1], thr0), wired(no, m_neg_hit[c1], thr0)
            fixed_pick = {**fixed_pick, **detail(pf, nf, word)}
        # mean of the two scores
        ms_p, ms_n = (po + pm) / 2, (no + nm) / 2
        mean = []
        for pat in wb.PATIENCES:
            for t2 in OWW_THRESHOLDS:
                mean.append(
                    point(fires(ms_p, t2, pat), fires(ms_n, t2, pat), word, threshold=t2, patience=pat)
                )
        m_best = max(
            (_pick([p for p in mean if p["patience"] == pat], "threshold", None) for pat in wb.PATIENCES),
            key=lambda p: (p["fa_per_hour"] <= wb.TARGET_FA_PER_HOUR, p["recall"]),
        )
        mp = fires(ms_p, m_best["threshold"], m_best["patience"])
        mn = fires(ms_n, m_best["threshold"], m_best["patience"])
        per_word[word] = {
            "positives": len(spans["word"][word]),
            "oww_default": baseline,
            "micro_alone": {"chosen": alone_pick, "curve": alone},
            "either": {"chosen": either_pick, "with_oww_default": fixed_pick, "grid": either},
            "mean": {"chosen": {**m_best, **detail(mp, mn, word)}, "grid": mean},
            "micro_peak_on_negatives": round(float(nm.max()), 4),
        }
        log.info(
            "bench wake-micro %s: oWW %.3f @ %.2f/h; mww alone %.3f @ %.2f/h (>%s); either %.3f @ %.2f/h; "
            "mean %.3f @ %.2f/h",
            word, baseline["recall"], baseline["fa_per_hour"], alone_pick["recall"],
            alone_pick["fa_per_hour"], c0, either_pick["recall"], either_pick["fa_per_hour"],
            m_best["recall"], m_best["fa_per_hour"],
        )  # fmt: skip

    # CPU: pymicro-wakeword's features + the hey_jarvis model per 10 ms step, on 2 min of negatives
    one = MicroScorer(("hey_jarvis",))
    for seg in segments[:4]:
        one.process(corpus.read_segment(seg))
    ms = np.asarray(one.step_ns, np.float64) / 1e6
    cpu = {
        "words": ["hey_jarvis"],
        "steps": len(ms),
        "ms_per_10ms_step": {
            "mean": round(float(ms.mean()), 4),
            "p95": round(float(np.percentile(ms, 95)), 4),
        },
        "core_pct_realtime": round(100 * float(ms.mean()) / 10.0, 2),
        "note": "thread CPU time, features + model (pymicro-wakeword's own Python loop), loaded shared box",
    }
    import importlib.metadata as md

    result: dict[str, Any] = {
        "package": f"pymicro-wakeword=={md.version('pymicro-wakeword')}",
        "words": list(words),
        "negatives_hours": round(hours_, 3),
        "positives_per_word": len(pos_all) // len(wb.WORDS),
        "decision": {
            "refractory_ms": cfg.wake.refractory_ms,
            "oww_patience": patience,
            "micro": "output (sliding-window mean, pymicro-wakeword) > cutoff; its 10 ms steps pooled by max "
            "into openWakeWord's 80 ms hops",
            "rule": "best recall with FA/hour <= target at the point and one step lower on each threshold",
        },
        "target": {"fa_per_hour": wb.TARGET_FA_PER_HOUR, "recall": wb.TARGET_RECALL},
        "per_word": per_word,
        "cpu": cpu,
        "timing_s": {"score": round(score_s, 1)},
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    (out_dir / "wake-micro.json").write_text(json.dumps(result, indent=1))
    _plot(result, out_dir / "wake-micro.png")
    return {
        w: {
            k: {x: r[k]["chosen"][x] for x in ("recall", "fa_per_hour")}
            if k != "oww_default"
            else {x: r[k][x] for x in ("recall", "fa_per_hour")}
            for k in ("oww_default", "micro_alone", "either", "mean")
        }
        for w, r in per_word.items()
    }


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = result["per_word"]
    fig, axes = plt.subplots(1, len(words), figsize=(4.2 * len(words), 4.4), squeeze=False)
    floor = 0.5 / max(result["negatives_hours"], 1e-9)

    def det(points: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
        return [max(p["fa_per_hour"], floor) for p in points], [100 * (1 - p["recall"]) for p in points]

    for ax, (word, r) in zip(axes[0], words.items(), strict=True):
        ax.plot(*det(r["micro_alone"]["curve"]), "b.-", ms=3, lw=1, label="microWakeWord alone")
        base = r["oww_default"]
        ax.plot(*det([base]), "ks", ms=7, mfc="none", label="openWakeWord default")
        fix = [p for p in r["either"]["grid"] if p["oww_threshold"] == base["threshold"]]
        if fix:
            ax.plot(*det(fix), "g.-", ms=3, lw=1, label="either fires (oWW default, mww cutoff swept)")
        for name, mark in (("either", "r*"), ("mean", "m^")):
            c = r[name]["chosen"]
            ax.plot(*det([c]), mark, ms=10, label=f"{name} chosen: {100 * c['recall']:.1f} %")
        ax.plot(*det([r["micro_alone"]["chosen"]]), "bD", ms=7, mfc="none", label="mww alone chosen")
        ax.axvline(wb.TARGET_FA_PER_HOUR, color="red", ls="--", lw=0.8)
        ax.axhline(100 * (1 - wb.TARGET_RECALL), color="grey", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlim(floor * 0.7, 100)
        ax.set_ylim(-2, 102)
        ax.set_title(f"{word} ({r['positives']} positives)")
        ax.set_xlabel(f"false accepts per hour ({result['negatives_hours']:.2f} h; 0 at {floor:.2f})")
        ax.set_ylabel("miss rate %")
        ax.legend(fontsize=6.5, loc="upper right")
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
