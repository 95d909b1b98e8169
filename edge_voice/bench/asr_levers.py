"""``edge-voice bench asr-levers``: whisper.cpp decode settings side by side, decode only (no daemon), on the
turn bench's commands and questions in several voices, every variant on every clip in turn (round-robin,
so a change in the box's speed hits all variants alike). Per variant: decode ms p50/p95, whisper's own
split of that time (mel, encoder, prompt, decoder steps, from ``whisper_print_timings``), WER and the share
of transcripts exactly right, so a faster setting never hides lost words.

Each clip is what the daemon hands whisper at the early decode: the pre-roll, the speech, ~100 ms after it.
Run at normal priority under ``flock /tmp/latency.lock`` (a timing bench). ``variants=a,b`` picks some;
``voices=…`` and ``n=`` (texts) make it smaller.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.audio import clips
from edge_voice.bench.asr import _speech, edit_distance, normalize, stats
from edge_voice.bench.turn import COMMANDS, QUESTIONS
from edge_voice.core.cancel import NEVER
from edge_voice.core.config import Config
from edge_voice.engines.asr import WhisperCppTranscriber, asr_prompt, audio_ctx_for, collapse_loop, drop_echo
from edge_voice.models import registry

VOICES = ("piper:1.0", "piper:1.1", "espeak:en-us", "espeak:en-gb")
TAIL_MS = 100  # the early decode starts ~32 ms after the acoustic end; the listener's frame adds the rest


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    model: str = ""  # "" = asr.model; else a manifest name or a path
    flash_attn: bool = True
    threads: int = 0  # 0 = asr.threads
    floor: int = 0  # audio_ctx floor; 0 = asr.audio_ctx_floor
    step: int = 256  # audio_ctx rounded up to a multiple of this
    prompt: bool = True
    guard: bool = False  # small context: tokens scaled to the audio; a loop or overrun re-decodes at 512
    params: dict[str, Any] = field(default_factory=dict)  # other whisper_full params
    engine: str = "whisper"  # "moonshine": engines/moonshine.py (the other fields do not apply)


def variants(models_dir: str) -> list[Variant]:
    m = models_dir.rstrip("/")
    return [
        Variant("q8_0 (default)"),
        Variant("f16", model="whisper-tiny.en-f16"),
        Variant("q5_1", model=f"{m}/ggml-tiny.en-q5_1.bin"),
        Variant("q5_0", model=f"{m}/ggml-tiny.en-q5_0.bin"),
        Variant("q4_1", model=f"{m}/ggml-tiny.en-q4_1.bin"),
        Variant("q4_0", model=f"{m}/ggml-tiny.en-q4_0.bin"),
        Variant("q4_0 fitted scales", model=f"{m}/ggml-tiny.en-q4_0-fit.bin"),
        Variant("q4_0 fitted x2-weighted", model=f"{m}/ggml-tiny.en-q4_0-fitw.bin"),
        Variant("flash attn off", flash_attn=False),
        Variant("1 thread", threads=1),
        Variant("no prompt", prompt=False),
        Variant("best_of 1", params={"greedy": {"best_of": 1}}),
        Variant("ctx 384 fa off", flash_attn=False, floor=384, step=128),
        Variant("ctx 384 fa off guarded", flash_attn=False, floor=384, step=128, guard=True),
        Variant("ctx 256 guarded", floor=256, guard=True),
        Variant("ctx 256 fa off tight guarded", flash_attn=False, floor=128, step=64, guard=True),
        Variant("ctx 256 temp fallback", floor=256, params={"temperature_inc": 0.2}),
        Variant("moonshine base", engine="moonshine"),
        Variant("moonshine base trimmed", engine="moonshine", params={"trim": True}),
    ]


_TIMING = re.compile(r"(mel|sample|encode|decode|batchd|prompt) time =\s*([\d.]+) ms")


class _Timings:
    """whisper_print_timings of one context, captured from fd 2 (whisper.cpp logs there)."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryFile()  # noqa: SIM115  # reused for every decode of the run

    def read(self, model: Any) -> dict[str, float]:
        import _pywhispercpp as pw  # type: ignore[import-not-found]

        self.tmp.seek(0)
        self.tmp.truncate()
        saved = os.dup(2)
        try:
            os.dup2(self.tmp.fileno(), 2)
            pw.whisper_print_timings(model._ctx)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        self.tmp.seek(0)
        text = self.tmp.read().decode(errors="replace")
        return {k: float(v) for k, v in _TIMING.findall(text)}


def _build(path: Path) -> None:
    """A quantization not in the manifest, converted from the pinned tiny.en package with our deterministic
    converter (its sha256 goes in the bench JSON; only a type adopted as a default gets a manifest entry)."""
    if path.exists():
        return
    from edge_voice.models import ggml_convert

    quant = path.name.removeprefix("ggml-tiny.en-").removesuffix(".bin")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        src = registry.resolve("whisper-tiny.en-ct2")
        ggml_convert.convert([src], registry.resolve("whisper-tiny.en-ct2-vocab"), f, quant)  # type: ignore[arg-type]
    tmp.replace(path)


def _engine(cfg: Config, v: Variant) -> Any:
    if v.engine == "moonshine":
        from edge_voice.engines.moonshine import MoonshineTranscriber

        return MoonshineTranscriber(cfg.asr, cfg.models_path, **v.params)
    import pywhispercpp.model as pwm

    acfg = replace(
        cfg.asr,
        model=v.model or cfg.asr.model,
        threads=v.threads or cfg.asr.threads,
        audio_ctx_floor=v.floor or cfg.asr.audio_ctx_floor,
    )
    real = pwm.Model

    class Model(real):  # type: ignore[misc,valid-type]  # the engine's own parameters plus this variant's
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, context_params={"flash_attn": v.flash_attn}, **{**kw, **v.params})

    pwm.Model = Model  # type: ignore[misc]
    try:
        return WhisperCppTranscriber(acfg, cfg.models_path, prompt=asr_prompt(cfg) if v.prompt else "")
    finally:
        pwm.Model = real  # type: ignore[misc]


def _decode(eng: WhisperCppTranscriber, v: Variant, pcm: np.ndarray) -> tuple[str, int, bool]:
    """(text, audio_ctx, fell back): the engine's decode with this variant's context rule."""
    import edge_voice.engines.asr as asr_mod

    ctx = audio_ctx_for(len(pcm), eng.cfg.audio_ctx_floor)
    if v.step != 256:
        frames = max(eng.cfg.audio_ctx_floor, -(-len(pcm) * 50 // 16000) + asr_mod.AUDIO_CTX_MARGIN)
        ctx = -(-frames // v.step) * v.step
    if not v.guard:
        with _ctx_rule(lambda n, floor, mx=1500: ctx):
            return eng.decode(pcm, NEVER).text, ctx, False
    audio_s = len(pcm) / 16000
    limit = int(8 + 5 * audio_s)  # speech is ~3 tokens/s; a loop runs on to the limit
    eng._model._set_params({"max_tokens": limit})
    try:
        with _ctx_rule(lambda n, floor, mx=1500: ctx):
            r = eng.decode(pcm, NEVER)
    finally:
        eng._model._set_params({"max_tokens": eng.cfg.max_tokens})
    looped = r.truncated or collapse_loop(r.raw) != r.raw or drop_echo(r.raw) != r.raw or not r.text
    if not looped:
        return r.text, ctx, False
    with _ctx_rule(lambda n, floor, mx=1500: 512):
        return eng.decode(pcm, NEVER).text, 512, True


class _ctx_rule:
    """Swap the engine module's ``audio_ctx_for`` for one decode."""

    def __init__(self, fn: Callable[..., int]) -> None:
        import edge_voice.engines.asr as asr_mod

        self.mod, self.fn, self.saved = asr_mod, fn, asr_mod.audio_ctx_for

    def __enter__(self) -> None:
        self.mod.audio_ctx_for = self.fn

    def __exit__(self, *exc: object) -> None:
        self.mod.audio_ctx_for = self.saved


def run(
    cfg: Config,
    out_dir: Path,
    variants_: str = "",
    voices: str = ",".join(VOICES),
    n: int = 0,
    models: str = "",
    **opts: Any,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    models = models or str(cfg.models_path / "whisper" / "levers")
    picked = str(opts.get("variants", variants_))
    vs = [v for v in variants(models) if not picked or v.name in picked.split(",")]
    texts = [*COMMANDS, *QUESTIONS][: n or None]
    clip_set: list[dict[str, Any]] = []
    for voice in voices.split(","):
        for text in texts:
            speech = _speech(text, voice)
            pcm = np.concatenate([clips.silence(cfg.endpoint.pre_roll_ms), speech, clips.silence(TAIL_MS)])
            clip_set.append({"text": text, "voice": voice, "pcm": pcm})
    for v in vs:
        if v.model.startswith("/"):
            _build(Path(v.model))
    engines = [_engine(cfg, v) for v in vs]
    timings = _Timings()
    rows: list[dict[str, Any]] = []
    for i, c in enumerate(clip_set):
        order = list(range(len(vs)))
        order = order[i % len(vs) :] + order[: i % len(vs)]  # who goes first rotates
        for j in order:
            v, eng = vs[j], engines[j]
            if v.engine == "moonshine":
                t0 = time.perf_counter()
                r = eng.decode(c["pcm"], NEVER)
                ms = (time.perf_counter() - t0) * 1e3
                text, ctx, fell_back = r.text, 0, False
                split = {"encode": r.encode_ms, "decode": r.decode_ms - r.encode_ms}
            else:
                import _pywhispercpp as pw

                pw.whisper_reset_timings(eng._model._ctx)
                t0 = time.perf_counter()
                text, ctx, fell_back = _decode(eng, v, c["pcm"])
                ms = (time.perf_counter() - t0) * 1e3
                split = timings.read(eng._model)
            ref, hyp = normalize(c["text"]), normalize(text)
            rows.append(
                {
                    "variant": v.name,
                    "voice": c["voice"],
                    "text": c["text"],
                    "transcript": text,
                    "ms": round(ms, 1),
                    "audio_ctx": ctx,
                    "fell_back": fell_back,
                    "errors": edit_distance(ref, hyp),
                    "words": len(ref),
                    "exact": ref == hyp,
                    **{f"{k}_ms": v for k, v in split.items()},
                }
            )
    summary = []
    base = {r["text"] + r["voice"]: r["exact"] for r in rows if r["variant"] == vs[0].name}
    for v in vs:
        sel = [r for r in rows if r["variant"] == v.name]
        parts: dict[str, float | None] = {
            f"{k}_ms_p50": stats([float(r.get(f"{k}_ms", 0.0)) for r in sel])["p50"]
            for k in ("mel", "encode", "prompt", "decode", "batchd", "sample")
        }
        summary.append(
            {
                "variant": v.name,
                "setting": {k: val for k, val in asdict(v).items() if k != "name"},
                "decodes": len(sel),
                "ms": stats([r["ms"] for r in sel]),
                **parts,
                "wer": round(sum(r["errors"] for r in sel) / max(1, sum(r["words"] for r in sel)), 4),
                "exact": sum(r["exact"] for r in sel),
                "exact_lost_vs_default": sum(
                    1 for r in sel if base.get(r["text"] + r["voice"]) and not r["exact"]
                ),
                "fell_back": sum(r["fell_back"] for r in sel),
                "wer_by_voice": {
                    voice: round(
                        sum(r["errors"] for r in sel if r["voice"] == voice)
                        / max(1, sum(r["words"] for r in sel if r["voice"] == voice)),
                        4,
                    )
                    for voice in voices.split(",")
                },
            }
        )
    result = {
        "bench": "asr-levers",
        "machine": {"cores": os.cpu_count(), "load_at_end": os.getloadavg()},
        "clips": len(clip_set),
        "voices": voices.split(","),
        "models": {v.name: _model_files(eng) for v, eng in zip(vs, engines, strict=True)},
        "summary": summary,
        "rows": rows,
    }
    (out_dir / "asr-levers.json").write_text(json.dumps(result, indent=2, default=str))
    _plot(summary, out_dir / "asr-levers.png")
    return {"clips": len(clip_set), "summary": summary}


def _model_files(eng: Any) -> dict[str, str]:
    paths = [eng.encoder_path, eng.decoder_path] if hasattr(eng, "encoder_path") else [eng.model_path]
    return {str(p): registry.sha256_file(p) for p in paths}


def _plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 1]})
    names = [s["variant"] for s in summary]
    y = np.arange(len(names))
    left = np.zeros(len(names))
    parts = (("mel", "tab:gray"), ("encode", "tab:blue"), ("prompt", "tab:orange"), ("decode", "tab:green"))
    for k, color in parts:
        vals = np.array([s.get(f"{k}_ms_p50") or 0.0 for s in summary])
        ax1.barh(y, vals, left=left, color=color, label=f"{k} (p50)")
        left += vals
    ax1.scatter([s["ms"]["p50"] for s in summary], y, color="k", marker="|", s=200, label="whole decode p50")
    ax1.scatter([s["ms"]["p95"] for s in summary], y, color="r", marker="|", s=200, label="p95")
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    ax1.set_xlabel("ms")
    ax1.set_title("ASR decode (whisper.cpp tiny.en variants, Moonshine base), one run, round-robin")
    ax1.legend(fontsize=8)
    ax2.barh(y, [100 * s["wer"] for s in summary], color="tab:red")
    ax2.set_yticks(y, [])
    ax2.invert_yaxis()
    ax2.set_xlabel("WER %")
    ax2.set_title("words")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
