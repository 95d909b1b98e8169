"""``edge-voice wake enroll`` and the grey-zone verifier with the real detector (openWakeWord on LiteRT) on
espeak-ng speech generated at test time: one synthetic user enrolls from WAV files; their verifier
rates a held-out rendition of the wake word above their other speech, and the listener starts with it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from edge_voice.audio import clips
from edge_voice.audio.wavio import write_wav
from edge_voice.cli.main import build_parser
from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, AudioFrame, Pcm, WakeDetected
from edge_voice.listen import verifier as vf
from edge_voice.listen.listener import Listener
from edge_voice.listen.vad import SileroVad
from edge_voice.listen.wake import OpenWakeWordDetector

pytestmark = pytest.mark.engines

VOICE = "en-us"


def said(text: str, wpm: int, pitch: int = 50) -> Pcm:
    pcm = clips.espeak_speech(text, VOICE, wpm, pitch)
    pad = np.zeros(SAMPLE_RATE // 2, np.int16)
    return np.concatenate([pad, pcm, pad, pad])


def test_enroll_from_files_then_listen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pos = [tmp_path / f"wake{i}.wav" for i in range(3)]
    for p, wpm in zip(pos, (140, 155, 170), strict=True):
        write_wav(p, said("Hey Jarvis", wpm))
    neg = [tmp_path / "other0.wav", tmp_path / "other1.wav"]
    write_wav(neg[0], said("The weather today is mild, with a light breeze from the west.", 160))
    write_wav(neg[1], said("Please remember to buy milk, bread and a dozen eggs.", 160))
    out = tmp_path / "verifier.npz"
    argv = ["wake", "enroll", "--out", str(out), "--positive", *map(str, pos), "--negative", *map(str, neg)]
    args = build_parser().parse_args(argv)
    cfg = Config()
    assert args.fn(cfg, args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["word"] == "hey_jarvis" and summary["positive_windows"] > 0
    v = vf.load(out)["hey_jarvis"]

    # held out: another rendition of the wake word against other speech by the same voice
    det = OpenWakeWordDetector(cfg.wake)
    wake_w, wake_s = vf.clip_windows(det, said("Hey Jarvis", 185, 56), "hey_jarvis", jitters=(0,))
    other_w, _ = vf.clip_windows(det, said("I will call you back after dinner tonight.", 160), "hey_jarvis")
    assert float(v.probs(wake_w[wake_s >= cfg.wake.verifier_floor]).max()) > float(v.probs(other_w).max())

    # the daemon's listener starts with the file (dimensions checked) and still hears the word
    wcfg = dataclasses.replace(cfg.wake, verifier=str(out), warmup_ms=0)
    listener = Listener(dataclasses.replace(cfg, wake=wcfg), det, SileroVad(cfg.vad))
    pcm = np.concatenate([np.zeros(SAMPLE_RATE, np.int16), said("Hey Jarvis", 150)])
    events = []
    for i in range(0, len(pcm) - 511, 512):
        events += listener.feed(AudioFrame(pcm[i : i + 512], i, 0))
    assert [e.word for e in events if isinstance(e, WakeDetected)] == ["hey_jarvis"]
