"""``edge-voice wake enroll``: record (or read) a user saying the wake word and other speech, and write
their grey-zone verifier (``listen.verifier``) for ``wake.verifier``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.config import Config, ConfigError
from edge_voice.core.messages import SAMPLE_RATE, Pcm

MAX_RECORDINGS = 20
MAX_RECORDING_S = 30  # a WAV longer than this is not an enrollment recording
WAKE_RECORD_S = 2.5
OTHER_RECORD_S = 6.0
OTHER_SENTENCES = (  # what a user reads besides the wake word: the verifier's negatives
    "The weather today is mild, with a light breeze from the west.",
    "Please remember to buy milk, bread and a dozen eggs on the way home.",
)


def default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base, "edge-voice", "wake-verifier.npz")


def _read(paths: list[Path]) -> list[Pcm]:
    from edge_voice.audio.wavio import read_wav_16k

    if len(paths) > MAX_RECORDINGS:
        raise ConfigError("wake enroll", f"at most {MAX_RECORDINGS} recordings of each kind")
    out = []
    for p in paths:
        pcm = read_wav_16k(p)
        if len(pcm) > MAX_RECORDING_S * SAMPLE_RATE:
            raise ConfigError("wake enroll", f"{p}: longer than {MAX_RECORDING_S} s")
        out.append(pcm)
    return out


def _record(cfg: Config, prompts: list[str], seconds: float) -> list[Pcm]:
    from edge_voice.audio.sources import MicSource

    block = cfg.audio.frame_samples
    mic = MicSource(cfg.audio.input_device, block)
    out: list[Pcm] = []
    try:
        for prompt in prompts:
            print(prompt, file=sys.stderr, flush=True)
            n = int(seconds * SAMPLE_RATE)
            parts = [mic.read(block) for _ in range(-(-n // block))]
            out.append(np.concatenate(parts)[:n])
    finally:
        mic.close()
    return out


def cmd_wake(cfg: Config, args: argparse.Namespace) -> int:
    from edge_voice.listen import verifier as vf
    from edge_voice.listen.wake import OpenWakeWordDetector

    word = args.word or cfg.wake.words[0]
    if word not in cfg.wake.words and word not in {Path(p).stem for p in cfg.wake.custom_models}:
        raise ConfigError("wake enroll", f"{word} is not an enabled wake word ({', '.join(cfg.wake.words)})")
    det = OpenWakeWordDetector(cfg.wake)
    phrase = word.replace("_", " ")
    if args.positive:
        positives = _read(args.positive)
    else:
        n = min(args.count, MAX_RECORDINGS)
        positives = _record(cfg, [f"({i + 1}/{n}) say “{phrase}” now" for i in range(n)], WAKE_RECORD_S)
    if args.negative:
        negatives = _read(args.negative)
    elif args.positive:
        raise ConfigError("wake enroll", "--positive needs --negative (recordings of other speech)")
    else:
        negatives = _record(cfg, [f"now read aloud: “{s}”" for s in OTHER_SENTENCES], OTHER_RECORD_S)
    try:
        v = vf.enroll(
            det,
            word,
            positives,
            negatives,
            cfg.wake.verifier_floor,
            report=lambda line: print(line, file=sys.stderr),
        )
    except vf.VerifierError as exc:
        raise ConfigError("wake enroll", str(exc)) from None
    out = (
        Path(args.out)
        if args.out
        else Path(cfg.wake.verifier).expanduser()
        if cfg.wake.verifier
        else default_path()
    )
    keep: dict[str, vf.Verifier] = {}
    if out.exists():
        try:
            keep = vf.load(out)  # other words' verifiers stay
        except vf.VerifierError:
            keep = {}
    keep[word] = v
    vf.save(out, keep.values())
    summary: dict[str, Any] = {
        "word": word,
        "file": str(out),
        "positive_windows": v.positives,
        "negative_windows": v.negatives,
        "config": f'[wake] verifier = "{out}"',
    }
    print(json.dumps(summary))
    return 0


def add_parser(sub: Any) -> None:
    w = sub.add_parser("wake", help="wake word tools: enroll a user's grey-zone verifier")
    w.add_argument("action", choices=["enroll"])
    w.add_argument("--word", help="the wake word (default: the first of wake.words)")
    w.add_argument("--count", type=int, default=5, help="wake word recordings from the microphone")
    w.add_argument("--positive", type=Path, nargs="+", help="WAV files of the wake word instead of the mic")
    w.add_argument("--negative", type=Path, nargs="+", help="WAV files of other speech by the same user")
    w.add_argument("--out", help="verifier file (default: wake.verifier, else $XDG_DATA_HOME/edge-voice/…)")
    w.set_defaults(fn=cmd_wake)
