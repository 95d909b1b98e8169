"""``edge-voice bench answers`` (issue 17): are the answers right, honest and in English?

The evaluation set (``edge_voice/bench/data/answers.toml``, ``bench.judge.load_items``) — questions a user
says to a kitchen speaker, in nine categories: geography, science, culture, definitions, numbers and
units, calendar (the factual ones), offline-only requests (weather, news, scores, prices, calls, shopping …:
the honest answer is "I can't"), chit-chat and misheard device commands — goes through ``Asker.ask``, the
daemon's answer path (fast-path rules and skills, then the LLM with the daemon's prompt, streamed into the
spoken sentences), once per *variant*, in the same run, question by question with the variants taking
turns (order alternating, so load on the shared box hits both alike). Each reply is scored by
``bench.judge.score``: correct, declined, wrong, foreign, invented.

Variants (``make_askers``): *new* = ``load_asker(cfg)``, whatever the daemon answers with on this tree;
*baseline* = the plain path as it was when this bench was written — the device rules only (no skills),
``BASELINE_LLM`` pinned (today's system prompt and sampling; no few-shot examples) and no reply guard —
built by ``baseline_asker``, the one function to adjust if skills or a guard are wired inside ``Asker``
itself. On this tree the two are the same path (the JSON says ``variants_identical``).

Writes ``<name>.json`` (per question: category, reply, route, score and its evidence, timings; per
variant: counts and shares per category, the issue's targets met/missed, TTFT and answer time p50/p95 per
route; RSS after) and ``<name>.png`` under ``out_dir``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge_voice.bench.asr import rss_mb, stats
from edge_voice.bench.judge import CATEGORIES, FACTUAL, LABELS, Item, load_items, score
from edge_voice.core.config import Config
from edge_voice.engines.base import Generator
from edge_voice.runtime.ask import Answer, Asker

log = logging.getLogger(__name__)

# The LLM settings of the baseline, pinned: llm defaults when issue 17 began (``LlmConfig`` may change)
BASELINE_LLM: dict[str, Any] = {
    "backend": "local",
    "system_prompt": (
        "You are a helpful voice assistant in a home. Answer in one or two short sentences "
        "of plain spoken English, with no lists or markdown."
    ),
    "temperature": 0.2,
    "examples": (),  # before issue 17: no few-shot examples, no stop strings
    "stop": (),
    "max_sentences": 0,
    "max_tokens": 48,
    "context_tokens": 2048,
    "history_turns": 3,
}
VARIANTS = ("baseline", "new")
# issue 17's targets: (key, what, threshold, higher is better)
TARGETS: tuple[tuple[str, str, float, bool], ...] = (
    ("factual_correct", "share of factual questions answered correctly", 0.85, True),
    ("offline_declined", "share of offline-only requests declined", 0.95, True),
    ("foreign_replies", "replies not in English", 0, False),
    ("invented_replies", "invented prices, forecasts, results", 0, False),
    ("llm_ttft_ms_p50", "LLM time to first token, p50 (ms)", 80, False),
)


def baseline_config(cfg: Config) -> Config:
    """``cfg`` with the LLM settings of the plain path (``BASELINE_LLM``); the model and threads stay."""
    return dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, **BASELINE_LLM))


def baseline_asker(cfg: Config, llm: Generator) -> Asker:
    """The plain path: the device rules alone (no skills) in front of ``llm``, no reply guard."""
    from edge_voice.core import chunker
    from edge_voice.engines.intents import RuleIntentMatcher

    matcher = RuleIntentMatcher(cfg.intents) if cfg.intents.enabled else None
    return Asker(cfg, llm, matcher, chunker.splitter_for(cfg.tts), guard=False)


def make_askers(cfg: Config, names: Sequence[str] = VARIANTS) -> tuple[dict[str, Asker], dict[str, Any]]:
    """(askers by variant name, what each is). Each variant has its own LLM instance, even with the same
    settings: a shared one would hand the second variant the first one's KV cache of the very same prompt
    (TTFT 20 ms instead of a real turn's)."""
    from edge_voice.runtime.ask import load_asker
    from edge_voice.runtime.daemon import load_llm

    askers: dict[str, Asker] = {}
    if "new" in names:
        askers["new"] = load_asker(cfg)
    if "baseline" in names:
        bcfg = baseline_config(cfg)
        askers["baseline"] = baseline_asker(bcfg, load_llm(bcfg, lambda _name, fn: fn(), []))
    described = {
        name: {
            "path": "load_asker(cfg): the daemon's" if name == "new" else "baseline_asker: rules only",
            "matcher": type(a.matcher).__name__ if a.matcher is not None else None,
            "llm": {
                k: len(a.cfg.llm.examples) if k == "examples" else getattr(a.cfg.llm, k)
                for k in ("model", *BASELINE_LLM)
            },
            "reply_guard": a.guard,
        }
        for name, a in askers.items()
    }
    return {n: askers[n] for n in names if n in askers}, described


def pick(items: Sequence[Item], limit: int = 0, cats: str = "") -> list[Item]:
    """``items`` of the categories in ``cats`` (comma-separated; "" = all); with ``limit``, that many taken
    round-robin over the categories (so a short run still sees each kind)."""
    chosen = [i for i in items if not cats or i.category in cats.split(",")]
    if not limit or limit >= len(chosen):
        return chosen
    by_cat: dict[str, list[Item]] = {}
    for i in chosen:
        by_cat.setdefault(i.category, []).append(i)
    out: list[Item] = []
    while len(out) < limit:
        for group in by_cat.values():
            if group and len(out) < limit:
                out.append(group.pop(0))
    return out


def answer_row(item: Item, answer: Answer) -> dict[str, Any]:
    s = score(item, answer.reply, answer.route)
    return {
        "reply": answer.reply,
        "route": answer.route,
        "intent": answer.intent,
        "score": s.label,
        "evidence": s.evidence,
        "stopped": answer.stopped,
        **answer.timings,
    }


# -------------------------------------------------------------------------------------------- summary


def tally(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts and shares of each score, and how many went the fast path, over ``rows`` (one variant's)."""
    n = len(rows)
    counts = Counter(str(r["score"]) for r in rows)
    return {
        "n": n,
        **{label: counts.get(label, 0) for label in LABELS},
        "shares": {label: round(counts.get(label, 0) / n, 3) if n else None for label in LABELS},
        "intent_routes": sum(r["route"] == "intent" for r in rows),
    }


def summarize(items: Sequence[Item], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One variant: per category, factual, overall; the targets; timings per route."""
    pairs = list(zip(items, rows, strict=True))
    by_cat = {
        cat: tally([r for i, r in pairs if i.category == cat])
        for cat in CATEGORIES
        if any(i.category == cat for i in items)
    }
    factual = tally([r for i, r in pairs if i.category in FACTUAL])
    offline = [r for i, r in pairs if i.expect == "declined"]
    llm_rows = [r for r in rows if r["route"] == "llm"]
    ttft = [float(r["llm_ttft_ms"]) for r in llm_rows if r.get("llm_ttft_ms") is not None]
    ttft_stats = stats(ttft)
    timings: dict[str, dict[str, Any]] = {
        "llm": {
            "n": len(llm_rows),
            "llm_ttft_ms": ttft_stats,
            "first_sentence_ms": stats(
                [float(r["first_sentence_ms"]) for r in llm_rows if r.get("first_sentence_ms") is not None]
            ),
            "total_ms": stats([float(r["total_ms"]) for r in llm_rows]),
            "stopped": dict(Counter(str(r["stopped"]) for r in llm_rows)),
        },
        "intent": {
            "n": len(rows) - len(llm_rows),
            "total_ms": stats([float(r["total_ms"]) for r in rows if r["route"] == "intent"]),
        },
    }
    values: dict[str, float | None] = {
        "factual_correct": factual["shares"]["correct"],
        "offline_declined": (
            round(sum(r["score"] == "declined" for r in offline) / len(offline), 3) if offline else None
        ),
        "foreign_replies": sum(r["score"] == "foreign" for r in rows),
        "invented_replies": sum(r["score"] == "invented" for r in rows),
        "llm_ttft_ms_p50": ttft_stats["p50"],
    }
    return {
        "overall": tally(rows),
        "factual": factual,
        "by_category": by_cat,
        "targets": check_targets(values),
        "timings": timings,
    }


def check_targets(values: Mapping[str, float | None]) -> dict[str, dict[str, Any]]:
    """Each of issue 17's targets: its value, the threshold, and "met", "missed" or "not measured"."""
    out: dict[str, dict[str, Any]] = {}
    for key, what, threshold, higher in TARGETS:
        v = values.get(key)
        ok = None if v is None else (v >= threshold if higher else v <= threshold)
        out[key] = {
            "what": what,
            "value": v,
            "target": f"{'≥' if higher else '≤'} {threshold}",
            "status": "not measured" if ok is None else ("met" if ok else "missed"),
        }
    return out


# ------------------------------------------------------------------------------------------------ run


def run(
    cfg: Config,
    out_dir: Path,
    limit: int = 0,
    cats: str = "",
    model: str = "",
    variants: str = "",
    name: str = "answers",
    label: str = "",
    rescore: int = 0,
    **_: Any,
) -> dict[str, Any]:
    """``--opt limit=N cats=geography,offline model=PATH.gguf variants=baseline,new name=answers
    label=…`` (``limit``: that many questions, round-robin over the categories; ``model``: another GGUF
    for ``llm.model``, both variants; ``name``: the output files' stem; ``label``: a line saying what the
    run is; ``rescore=1``: no run, score the replies ``<name>.json`` holds again with today's judge and
    set). ~6 min on this box for the whole set and both variants."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if rescore:
        return rescore_file(out_dir, name)
    if model:
        cfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, model=str(model)))
    items = pick(load_items(), int(limit), str(cats))
    names = [v for v in VARIANTS if not variants or v in str(variants).split(",")]
    t = time.perf_counter()
    askers, described = make_askers(cfg, names)
    load_s = time.perf_counter() - t
    rows: list[dict[str, Any]] = []
    load_avg: list[float] = []
    t0 = time.perf_counter()
    for k, item in enumerate(items):
        row: dict[str, Any] = {
            "id": item.id,
            "question": item.question,
            "category": item.category,
            "expect": item.expect,
            "accept": list(item.accept),
        }
        for vname in names if k % 2 == 0 else names[::-1]:
            row[vname] = answer_row(item, askers[vname].ask(item.question))
        rows.append(row)
        if k % 20 == 0:
            load_avg.append(round(os.getloadavg()[0], 2))
            log.info("bench answers: %d/%d", k + 1, len(items))
    wall_s = time.perf_counter() - t0
    results = {v: summarize(items, [r[v] for r in rows]) for v in names}
    same = {json.dumps({k: described[v][k] for k in ("matcher", "llm")}, sort_keys=True) for v in names}
    identical = len(names) > 1 and len(same) == 1
    result: dict[str, Any] = {
        **({"label": label} if label else {}),
        "bench": "answers",
        "machine": {"cores": os.cpu_count(), "load_avg_1min": load_avg},
        "model": cfg.llm.model,
        "variants": described,
        "variants_identical": identical,
        "note": "baseline and new: the same matcher and LLM settings on this tree" if identical else "",
        "set": {"questions": len(items), "categories": dict(Counter(i.category for i in items))},
        "load_s": round(load_s, 1),
        "wall_s": round(wall_s, 1),
        "rss_mb_after": round(rss_mb(), 1),
        "rss_mb_peak": round(rss_mb("VmHWM"), 1),
        "results": results,
        "rows": rows,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    plot(result, out_dir / f"{name}.png")
    return {k: v for k, v in result.items() if k not in ("rows", "results")} | {
        v: {
            "factual": r["factual"]["shares"],
            "by_category_correct": {c: t["shares"]["correct"] for c, t in r["by_category"].items()},
            "targets": {k: f"{t['value']} ({t['status']})" for k, t in r["targets"].items()},
            "llm_ttft_ms": r["timings"]["llm"]["llm_ttft_ms"],
        }
        for v, r in results.items()
    }


def rescore_file(out_dir: Path, name: str = "answers") -> dict[str, Any]:
    """Score the saved replies of ``<name>.json`` again (the judge or the accepted words changed); the
    timings stay those of the run."""
    path = out_dir / f"{name}.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    current = {i.question: i for i in load_items()}
    items: list[Item] = []
    for row in result["rows"]:
        item = current.get(row["question"]) or Item(
            row["question"], row["category"], tuple(row["accept"]), row["expect"]
        )
        row.update(category=item.category, expect=item.expect, accept=list(item.accept))
        items.append(item)
        for v in result["results"]:
            s = score(item, row[v]["reply"], row[v]["route"])
            row[v].update(score=s.label, evidence=s.evidence)
    for v in result["results"]:
        result["results"][v] = summarize(items, [r[v] for r in result["rows"]])
    result["rescored"] = True
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    plot(result, out_dir / f"{name}.png")
    return {v: r["targets"] for v, r in result["results"].items()}


# ----------------------------------------------------------------------------------------------- plot

COLORS = {
    "correct": "#4a4",
    "declined": "#48c",
    "wrong": "#aaa",
    "foreign": "#e90",
    "invented": "#c33",
}


def plot(result: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    res: Mapping[str, Any] = result["results"]
    names = list(res)
    cats = [c for c in CATEGORIES if any(c in r["by_category"] for r in res.values())]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(16, 5.6), gridspec_kw={"width_ratios": [3.2, 1]})
    x = np.arange(len(cats))
    w = 0.8 / max(1, len(names))
    for i, v in enumerate(names):
        by = res[v]["by_category"]
        xs = x + (i - (len(names) - 1) / 2) * w
        bottom = np.zeros(len(cats))
        for label in LABELS:
            vals = np.array([100 * (by[c]["shares"][label] or 0) if c in by else 0 for c in cats])
            ax1.bar(
                xs,
                vals,
                w * 0.95,
                bottom=bottom,
                color=COLORS[label],
                hatch="//" if i == 0 and len(names) > 1 else None,
                edgecolor="white",
                label=label if i == len(names) - 1 else None,
            )
            bottom += vals
        for xx, c in zip(xs, cats, strict=True):
            if c in by:
                ax1.text(xx, 101, v[:4], ha="center", fontsize=6)
    first = res[names[0]]["by_category"]
    ax1.set_xticks(x, [f"{c}\n({first[c]['n'] if c in first else 0})" for c in cats], fontsize=8)
    ax1.set_ylim(0, 108)
    ax1.set_ylabel("% of the category's questions")
    ax1.set_title(
        "Replies per category"
        + (f": {' vs '.join(names)} (hatched: {names[0]})" if len(names) > 1 else "")
        + " — offline: declined is right; misheard: correct = the fast path took it",
        fontsize=9,
    )
    ax1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=5)
    keys = ("p50", "p95")
    x2 = np.arange(4)
    for i, v in enumerate(names):
        t = res[v]["timings"]["llm"]
        ms = [t["llm_ttft_ms"][k] or 0 for k in keys] + [t["total_ms"][k] or 0 for k in keys]
        bars = ax2.bar(x2 + (i - (len(names) - 1) / 2) * w, ms, w, label=v, color=f"C{i}")
        ax2.bar_label(bars, fmt="%.0f", fontsize=7)
    ax2.axhline(80, ls="--", c="k", lw=1, label="TTFT target 80 ms")
    ax2.set_xticks(x2, ["TTFT\np50", "TTFT\np95", "answer\np50", "answer\np95"], fontsize=8)
    ax2.set_yscale("log")
    ax2.set_ylabel("ms (LLM route; log scale)")
    ax2.set_title("LLM time to first token and whole answer", fontsize=9)
    ax2.legend(fontsize=8)
    s = result["set"]
    title = f"bench answers, {s['questions']} questions, model {result['model']}"
    loads = result["machine"].get("load_avg_1min") or []
    if loads:
        cores = result["machine"]["cores"]
        title += f"; 1-min load average {min(loads):.1f}–{max(loads):.1f} on {cores} cores"
    if result.get("variants_identical"):
        title += " — variants identical on this tree"
    if result.get("label"):
        title += f" — {result['label']}"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
