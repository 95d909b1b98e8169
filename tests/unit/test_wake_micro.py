"""The second wake detector's fusion (listen/micro.py), with fakes of both detectors: a microWakeWord
output over its cutoff raises the word to 1.0 for ``patience`` hops, so ``WakeGate`` fires on it exactly as
``bench wake-micro`` replays it (``latch`` + ``fire_hops``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edge_voice.core.config import MEASURED_MICRO_CUTOFFS, ConfigError, WakeConfig, from_mapping
from edge_voice.listen.micro import FusedWakeDetector, latch
from edge_voice.listen.wake import HOP_SAMPLES, WakeGate, fire_hops
from tests.fakes import ScriptedWake

W = "hey_jarvis"


class _Oww(ScriptedWake):
    words = (W,)

    def process(self, samples: np.ndarray) -> dict[str, float]:
        return {W: v} if (v := super().process(samples).get("w")) is not None else {}


class _Micro:
    """microWakeWord's output per 80 ms hop from a script (one inference's output per hop)."""

    def __init__(self, outputs: list[float], words: tuple[str, ...] = (W,)) -> None:
        self.words, self.outputs, self.hop, self.fill, self.resets = words, outputs, 0, 0, 0

    def process(self, samples: np.ndarray) -> dict[str, float]:
        self.fill += len(samples)
        out: dict[str, float] = {}
        while self.fill >= HOP_SAMPLES:
            self.fill -= HOP_SAMPLES
            out = {w: self.outputs[self.hop] if self.hop < len(self.outputs) else 0.0 for w in self.words}
            self.hop += 1
        return out

    def reset(self) -> None:
        self.resets += 1


def _run(oww: list[float], micro: list[float], cfg: WakeConfig, block: int = 512) -> list[float]:
    det = FusedWakeDetector(_Oww(oww), cfg, _Micro(micro))  # type: ignore[arg-type]
    out: list[float] = []
    pos = 0
    total = len(oww) * HOP_SAMPLES
    while pos < total:  # the listener cuts its blocks at hop ends: at most one hop per call
        n = min(block, HOP_SAMPLES - pos % HOP_SAMPLES)
        got = det.process(np.zeros(n, np.int16))
        if got:
            out.append(got[W])
        pos += n
    return out


def test_a_micro_output_over_its_cutoff_raises_the_word_for_patience_hops() -> None:
    cfg = WakeConfig(micro=True, micro_cutoffs={W: 0.9}, patience=3)
    oww = [0.01] * 12
    micro = [0.0] * 12
    micro[4] = 0.95
    assert _run(oww, micro, cfg) == [0.01] * 4 + [1.0] * 3 + [0.01] * 5
    micro[4] = 0.9  # at the cutoff: not over it (pymicro-wakeword's rule)
    assert _run(oww, micro, cfg) == oww


def test_the_gate_fires_once_as_the_bench_replays_it() -> None:
    cfg = WakeConfig(micro=True, micro_cutoffs={W: 0.5}, patience=3, refractory_ms=2000)
    rng = np.random.default_rng(7)
    oww = list(rng.uniform(0, 0.6, 200).round(3))
    micro = list((rng.uniform(0, 1, 200) ** 8).round(3))
    fused = _run(oww, micro, cfg)
    gate = WakeGate(lambda w: 0.5, 3, 2000 * 16)
    live = [k for k, s in enumerate(fused) if gate.update({W: s}, (k + 1) * HOP_SAMPLES)]
    o, m = np.asarray(oww, np.float32), np.asarray(micro, np.float32) > 0.5
    replay = fire_hops(np.where(latch(m, 3), 1.0, o), 0.5, 3, 2000 * 16)
    assert live == replay and live  # (the script has fires)


def test_openwakeword_alone_is_untouched_and_reset_reaches_both() -> None:
    cfg = WakeConfig(micro=True)
    assert _run([0.2, 0.7, 0.1], [0.1, 0.2, 0.3], cfg) == [0.2, 0.7, 0.1]
    micro = _Micro([1.0])
    det = FusedWakeDetector(_Oww([0.0]), cfg, micro)  # type: ignore[arg-type]
    det.process(np.zeros(HOP_SAMPLES - 1, np.int16))
    det.reset()
    assert micro.resets == 1


def test_a_word_microwakeword_does_not_carry_is_a_config_error() -> None:
    oww = _Oww([0.0])
    oww.words = ("hey_rhasspy",)
    with pytest.raises(ConfigError, match=r"wake\.micro"):
        FusedWakeDetector(oww, WakeConfig(micro=True), _Micro([], words=()))  # type: ignore[arg-type]


def test_cutoffs_default_to_the_measured_ones_and_are_range_checked() -> None:
    assert WakeConfig().micro_cutoff_for(W) == MEASURED_MICRO_CUTOFFS[W]
    assert WakeConfig(micro_cutoffs={W: 0.5}).micro_cutoff_for(W) == 0.5
    with pytest.raises(ConfigError, match="micro_cutoffs"):
        from_mapping({"wake": {"micro_cutoffs": {W: 1.5}}})
    assert WakeConfig().micro and WakeConfig().micro_cutoff_for("hey_mycroft") is None
    assert not replace(WakeConfig(), micro=False).micro
