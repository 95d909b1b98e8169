"""The grey-zone verifier (numpy logistic regression, its file) and the second chance in the wake decision
(``WakeGate`` with a grey floor, its vectorised twin, the listener's start-up checks) — samples only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edge_voice.core.config import Config, ConfigError, WakeConfig
from edge_voice.core.messages import AudioFrame, WakeDetected
from edge_voice.listen import verifier as vf
from edge_voice.listen.wake import HOP_SAMPLES, WakeGate, fire_hops
from tests.fakes import QuietVad, ScriptedWake

RNG = np.random.default_rng(7)


def clusters(n_pos: int = 40, n_neg: int = 120, shift: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    pos = RNG.normal(shift, 1.0, (n_pos, 16, 96)).astype(np.float32)
    neg = RNG.normal(0.0, 1.0, (n_neg, 16, 96)).astype(np.float32)
    return pos, neg


def test_fit_reaches_the_regularised_optimum_and_separates() -> None:
    pos, neg = clusters()
    v = vf.fit(pos, neg, "w")
    # the gradient of c·Σ w_i·logloss + ½‖w‖² (scikit-learn's objective) is zero at the solution
    x = np.concatenate([pos.reshape(len(pos), -1), neg.reshape(len(neg), -1)]).astype(np.float64)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    sw = np.where(y == 1, len(y) / (2 * len(pos)), len(y) / (2 * len(neg)))
    xs = (x - v.mean) / v.scale
    p = 1 / (1 + np.exp(-(xs @ v.weights.astype(np.float64) + v.bias)))
    grad = vf.C * xs.T @ (sw * (p - y)) + v.weights
    assert np.abs(grad).max() < 1e-4
    test_pos, test_neg = clusters(50, 50)
    assert v.probs(test_pos).mean() > 0.8 > 0.2 > v.probs(test_neg).mean()


def test_prob_and_its_vectorised_twin_agree() -> None:
    pos, neg = clusters()
    v = vf.fit(pos, neg, "w")
    some = np.concatenate([pos[:5], neg[:5]])
    assert np.allclose([v.prob(w) for w in some], v.probs(some), atol=1e-5)


def test_fit_needs_both_classes() -> None:
    pos, neg = clusters()
    with pytest.raises(vf.VerifierError):
        vf.fit(pos, neg[:0], "w")


def test_file_round_trip_keeps_every_word(tmp_path: Path) -> None:
    pos, neg = clusters()
    a, b = vf.fit(pos, neg, "a"), vf.fit(neg[:40], pos, "b")
    path = tmp_path / "v.npz"
    vf.save(path, [a, b])
    got = vf.load(path)
    assert sorted(got) == ["a", "b"]
    assert np.array_equal(got["a"].weights, a.weights) and got["b"].bias == b.bias
    assert got["a"].positives == len(pos) and got["a"].negatives == len(neg)
    assert vf.verifiers_for(str(path), ("b", "c")).keys() == {"b"}
    assert vf.verifiers_for("", ("a",)) == {}


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_a_foreign_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "v.npz"
    path.write_bytes(content)
    with pytest.raises(vf.VerifierError):
        vf.load(path)


def test_pickled_arrays_and_huge_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.npz"
    np.savez(path, format=np.array(1), words=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(vf.VerifierError):
        vf.load(path)
    big = tmp_path / "big.npz"
    big.write_bytes(b"\0" * (vf.MAX_FILE_BYTES + 1))
    with pytest.raises(vf.VerifierError, match="larger"):
        vf.load(big)
    with pytest.raises(vf.VerifierError):
        vf.load(tmp_path / "missing.npz")


# ------------------------------------------------------------------------------------------ the gate


CHECKED: list[int] = []  # hops the last run_gate asked the verifier about


def run_gate(scores: list[float], verdict: bool, floor: float | None = 0.1, patience: int = 2) -> list[int]:
    gate = WakeGate(lambda _w: 0.5, patience, 0, None if floor is None else {"w": floor})
    CHECKED.clear()
    fired_at: list[int] = []
    for k, s in enumerate(scores):

        def verify(_word: str, k: int = k) -> bool:
            CHECKED.append(k)
            return verdict

        if gate.update({"w": s}, (k + 1) * HOP_SAMPLES, verify):
            fired_at.append(k)
    return fired_at


def test_grey_zone_hops_count_only_when_verified() -> None:
    s = [0.05, 0.2, 0.3, 0.05, 0.3, 0.6]
    assert run_gate(s, verdict=False) == []  # 0.6 alone is one hop: patience 2
    assert run_gate(s, verdict=True) == [2, 5]
    # the verifier is asked about grey-zone hops only: not below the floor, not at/above the threshold
    assert CHECKED == [1, 2, 4]


def test_the_verifier_never_vetoes() -> None:
    assert run_gate([0.6, 0.7, 0.8], verdict=False) == [1, 2]  # no refractory here
    assert CHECKED == []


def test_words_without_a_verifier_are_not_checked() -> None:
    assert run_gate([0.3, 0.3, 0.3], verdict=True, floor=None) == []
    assert CHECKED == []


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_twin_matches_the_gate_with_a_verifier(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = np.clip(rng.normal(0.05, 0.08, 2000) + (rng.random(2000) < 0.05) * rng.random(2000), 0, 1)
    accept = rng.random(2000) < 0.6  # the verifier's verdict at each hop
    for thr, floor, patience, refractory in ((0.5, 0.1, 1, 0), (0.5, 0.05, 2, 1280), (0.3, 0.02, 3, 32000)):
        gate = WakeGate(lambda _w, t=thr: t, patience, refractory, {"w": floor})
        fires = []
        for k, x in enumerate(s):
            if gate.update({"w": float(x)}, (k + 1) * HOP_SAMPLES, lambda _w, k=k: bool(accept[k])):
                fires.append(k)
        verified = (s >= floor) & (s < thr) & accept
        assert fire_hops(s, thr, patience, refractory, verified) == fires


# ------------------------------------------------------------------------------ config and listener


def test_verifier_keys_are_range_checked() -> None:
    with pytest.raises(ConfigError, match=r"wake\.verifier_floor"):
        WakeConfig(verifier_floor=0.0)
    with pytest.raises(ConfigError, match=r"wake\.verifier_threshold"):
        WakeConfig(verifier_threshold=1.0)


class _FeatureWake(ScriptedWake):
    """Scripted scores per hop plus a window whose mean is the hop's 'voice' (a fake detector)."""

    def __init__(self, scores: list[float], voice: list[float]) -> None:
        super().__init__(scores)
        self.voice = voice

    def features(self, word: str) -> np.ndarray:
        k = min(self.hop - 1, len(self.voice) - 1)
        return np.full((16, 96), self.voice[max(k, 0)], np.float32)


def _cfg(path: str) -> Config:
    base = Config()
    wake = dataclasses.replace(
        base.wake, warmup_ms=0, patience=2, thresholds={"w": 0.5}, verifier=path, verifier_floor=0.1
    )
    return dataclasses.replace(base, wake=wake)


def _user_verifier(tmp_path: Path) -> str:
    rng = np.random.default_rng(1)
    pos = (1.0 + 0.1 * rng.normal(size=(30, 16, 96))).astype(np.float32)  # "the user": windows near 1
    neg = (0.1 * rng.normal(size=(60, 16, 96))).astype(np.float32)  # their other speech: near 0
    path = tmp_path / "v.npz"
    vf.save(path, [vf.fit(pos, neg, "w")])
    return str(path)


@pytest.mark.parametrize(("voice", "wakes"), [(1.0, 1), (0.0, 0)])
def test_listener_gives_the_enrolled_voice_a_second_chance(tmp_path: Path, voice: float, wakes: int) -> None:
    from edge_voice.listen.listener import Listener

    scores = [0.0, 0.3, 0.35, 0.3, 0.0, 0.0, 0.0, 0.0]  # grey zone only: never above 0.5
    listener = Listener(_cfg(_user_verifier(tmp_path)), _FeatureWake(scores, [voice] * 8), QuietVad())
    events = []
    for k in range(20):
        events += listener.feed(AudioFrame(np.zeros(512, np.int16), k * 512, 0))
    assert len([e for e in events if isinstance(e, WakeDetected)]) == wakes


def test_listener_refuses_a_bad_verifier_at_start(tmp_path: Path) -> None:
    from edge_voice.listen.listener import Listener

    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    with pytest.raises(ConfigError, match=r"wake\.verifier"):
        Listener(_cfg(str(bad)), _FeatureWake([], []), QuietVad())
    other = tmp_path / "other.npz"
    pos, neg = clusters()
    vf.save(other, [vf.fit(pos, neg, "not_enabled")])
    with pytest.raises(ConfigError, match="no verifier for any of w"):
        Listener(_cfg(str(other)), _FeatureWake([], []), QuietVad())


def test_enroll_keeps_windows_at_or_above_the_floor() -> None:
    # a fake detector: the score of a hop is its peak amplitude / 32767, the window its mean level
    class Amp:
        words = ("w",)

        def __init__(self) -> None:
            self.last = np.zeros(HOP_SAMPLES, np.int16)

        def process(self, samples: np.ndarray) -> dict[str, float]:
            self.last = samples
            return {"w": float(np.abs(samples.astype(np.float64)).max() / 32767)} if len(samples) else {}

        def reset(self) -> None:
            pass

        def features(self, word: str) -> np.ndarray:
            return np.full((16, 96), float(np.abs(self.last.astype(np.float64)).mean() / 32767), np.float32)

    loud = np.full(4 * HOP_SAMPLES, 16000, np.int16)
    quiet = np.full(8 * HOP_SAMPLES, 300, np.int16)
    lines: list[str] = []
    v = vf.enroll(Amp(), "w", [loud], [quiet], floor=0.3, report=lines.append)
    assert v.positives == 4 + 3 * (len(vf.JITTERS) - 1)  # every full hop of each offset view
    assert "peak score 0.488" in lines[0]
    with pytest.raises(vf.VerifierError, match="none of the 1 recordings"):
        vf.enroll(Amp(), "w", [quiet], [quiet], floor=0.3)
