"""``wake.micro`` with the real detectors (openWakeWord on LiteRT, microWakeWord through pymicro-wakeword's
TensorFlow Lite library, models verified against the manifest) in the daemon's listener: Piper's "Hey
Jarvis" wakes it through microWakeWord alone (openWakeWord's threshold set out of reach), other speech
does not, and the daemon's factory builds the fused detector only when the key is on (the default)
and microWakeWord has a cutoff for an enabled word."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge_voice.audio import clips
from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, AudioFrame, Pcm, WakeDetected
from edge_voice.listen.listener import Listener
from edge_voice.listen.micro import FusedWakeDetector, wake_detector
from edge_voice.listen.vad import SileroVad
from edge_voice.listen.wake import OpenWakeWordDetector

pytestmark = pytest.mark.engines


def _wakes(cfg: Config, pcm: Pcm) -> list[WakeDetected]:
    listener = Listener(cfg, wake_detector(cfg.wake), SileroVad(cfg.vad))
    out: list[WakeDetected] = []
    block = cfg.audio.frame_samples
    for i in range(0, len(pcm) - block + 1, block):
        out += [e for e in listener.feed(AudioFrame(pcm[i : i + block], i, 0)) if isinstance(e, WakeDetected)]
    return out


def _speech(text: str) -> Pcm:
    pad = np.zeros(SAMPLE_RATE, np.int16)
    return np.concatenate([pad, clips.piper_speech(text), pad, pad])


def test_microwakeword_alone_wakes_the_listener() -> None:
    base = Config()
    # openWakeWord cannot fire (threshold 0.999 is out of its reach on this clip): only the fusion can
    wcfg = dataclasses.replace(base.wake, micro=True, thresholds={"hey_jarvis": 0.999}, warmup_ms=0)
    cfg = dataclasses.replace(base, wake=wcfg)
    assert isinstance(wake_detector(cfg.wake), FusedWakeDetector)
    off = dataclasses.replace(base.wake, micro=False)
    assert isinstance(wake_detector(off), OpenWakeWordDetector)  # off by the key: openWakeWord only
    mycroft = dataclasses.replace(base.wake, words=("hey_mycroft",))  # no measured cutoff: not run
    assert isinstance(wake_detector(mycroft), OpenWakeWordDetector)
    got = _wakes(cfg, _speech("Hey Jarvis, what time is it?"))
    assert [w.word for w in got] == ["hey_jarvis"]
    assert not _wakes(
        dataclasses.replace(cfg, wake=dataclasses.replace(wcfg, micro=False)), _speech("Hey Jarvis.")
    )
    assert not _wakes(cfg, _speech("The weather today is mild, with a light breeze from the west."))
