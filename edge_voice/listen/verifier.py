"""A second chance for a wake word said by *this* user: a grey-zone verifier.

openWakeWord's "custom verifier" idea (docs/custom_verifier_models.md): a small logistic regression on the
detector's own embedding features, trained on a few recordings of the user saying the wake word
(positives) and saying other things (negatives), consulted only when the head's score lands in a grey
zone below the threshold. Here it is numpy only (no scikit-learn at run time): standardised flattened
embedding windows (the head's input, windows × 96), an L2-regularised logistic regression fitted by
Newton's method, stored in an ``.npz`` of plain arrays (no pickle). Unlike openWakeWord, the verifier
never vetoes a score at or above the threshold: it can only add detections, so a guest's wake word works
as before; what it must not add is false accepts, which ``bench wake`` measures on the negative corpus.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from edge_voice.core.messages import Pcm

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

FORMAT = 1
MAX_FILE_BYTES = 4 << 20  # a verifier is ~13 kB per word; anything far larger is not ours
# L2 strength on standardised features, as openWakeWord's C = 0.01 (sklearn: C·Σ loss + ½‖w‖²)
C = 0.01
JITTERS = (0, 256, 512, 768, 1024)  # start offsets (samples) of each enrollment clip: 5 views of it


class VerifierError(ValueError):
    """A verifier file that cannot be used (missing, foreign, wrong shape)."""


@dataclass(frozen=True, slots=True)
class Verifier:
    """P(this user said ``word``) from one embedding window (``windows`` × 96, oldest first)."""

    word: str
    mean: F32  # per flattened feature
    scale: F32
    weights: F32  # on standardised features
    bias: float
    positives: int  # windows it was fitted on (for the record)
    negatives: int

    @property
    def dim(self) -> int:
        return len(self.weights)

    def prob(self, window: F32) -> float:
        z = float(np.dot((window.reshape(-1) - self.mean) / self.scale, self.weights)) + self.bias
        return 1.0 / (1.0 + np.exp(-z)) if z > -40 else 0.0

    def probs(self, windows: F32) -> F64:
        """``prob`` for a stack of windows (n × windows × 96): the bench's vectorised twin."""
        if len(windows) == 0:
            return np.zeros(0)
        x = (windows.reshape(len(windows), -1) - self.mean) / self.scale
        z = x.astype(np.float64) @ self.weights.astype(np.float64) + self.bias
        out: F64 = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        return out


def fit(positives: F32, negatives: F32, word: str, c: float = C, iterations: int = 30) -> Verifier:
    """Logistic regression on flattened, standardised windows (n × windows × 96 each), minimising
    c·Σ log-loss + ½‖w‖² as scikit-learn's ``LogisticRegression(C=c)`` (bias not penalised), by Newton
    steps; classes weighted to equal total mass so a few positives are not drowned by many negatives."""
    if len(positives) == 0 or len(negatives) == 0:
        raise VerifierError(f"verifier {word}: needs positive and negative windows")
    x = np.concatenate([positives.reshape(len(positives), -1), negatives.reshape(len(negatives), -1)])
    x = x.astype(np.float64)
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    sw = np.where(y == 1, len(y) / (2 * len(positives)), len(y) / (2 * len(negatives)))
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    xs = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    d = xs.shape[1]
    reg = np.ones(d)
    reg[-1] = 1e-6  # the bias is (almost) free
    beta = np.zeros(d)
    # Newton steps, H = c·XᵀWX + R. With fewer windows than features (the usual case: a few hundred
    # windows, 1536 features) solved in the n × n Woodbury form, whose X R⁻¹ Xᵀ is fixed: computed once.
    xr = xs / reg
    gram = c * (xr @ xs.T) if len(xs) < d else None
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xs @ beta, -40, 40)))
        grad = c * (xs.T @ (sw * (p - y))) + reg * beta
        wdiag = np.maximum(sw * p * (1 - p), 1e-9)
        if gram is None:
            step = np.linalg.solve(c * (xs.T @ (wdiag[:, None] * xs)) + np.diag(reg), grad)
        else:  # (R + c·XᵀWX)⁻¹ = R⁻¹ − R⁻¹Xᵀ (W⁻¹ + c·XR⁻¹Xᵀ)⁻¹ c·XR⁻¹
            step = grad / reg - xr.T @ np.linalg.solve(np.diag(1.0 / wdiag) + gram, c * (xr @ grad))
        beta -= step
        if float(np.max(np.abs(step))) < 1e-7:
            break
    return Verifier(
        word,
        mean.astype(np.float32),
        scale.astype(np.float32),
        beta[:-1].astype(np.float32),
        float(beta[-1]),
        len(positives),
        len(negatives),
    )


# ------------------------------------------------------------------------------------------- files


def save(path: Path, verifiers: Iterable[Verifier]) -> None:
    arrays: dict[str, Any] = {"format": np.array(FORMAT)}
    words = []
    for v in verifiers:
        words.append(v.word)
        arrays[f"{v.word}.mean"] = v.mean
        arrays[f"{v.word}.scale"] = v.scale
        arrays[f"{v.word}.weights"] = v.weights
        arrays[f"{v.word}.bias"] = np.array(v.bias)
        arrays[f"{v.word}.counts"] = np.array([v.positives, v.negatives])
    arrays["words"] = np.array(words)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load(path: Path) -> dict[str, Verifier]:
    """Every word's verifier in ``path`` (written by ``save``); plain arrays only, size-checked."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise VerifierError(f"{path}: larger than {MAX_FILE_BYTES} bytes, not a verifier file")
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != FORMAT:
                raise VerifierError(f"{path}: format {int(z['format'])}, expected {FORMAT}")
            out: dict[str, Verifier] = {}
            for word in (str(w) for w in z["words"]):
                mean, scale, weights = z[f"{word}.mean"], z[f"{word}.scale"], z[f"{word}.weights"]
                if not (mean.shape == scale.shape == weights.shape and mean.ndim == 1):
                    raise VerifierError(f"{path}: {word}: inconsistent array shapes")
                counts = z[f"{word}.counts"]
                out[word] = Verifier(
                    word,
                    mean.astype(np.float32),
                    scale.astype(np.float32),
                    weights.astype(np.float32),
                    float(z[f"{word}.bias"]),
                    int(counts[0]),
                    int(counts[1]),
                )
            return out
    except VerifierError:
        raise
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise VerifierError(f"{path}: not a usable wake verifier file ({exc})") from None


# ---------------------------------------------------------------------------------------- enrolment


@runtime_checkable
class FeatureDetector(Protocol):
    """What enrolment needs of a detector (``OpenWakeWordDetector``): scores per hop and the window
    the head scored at the last hop. Called from one thread."""

    words: tuple[str, ...]

    def process(self, samples: Pcm) -> dict[str, float]: ...

    def reset(self) -> None: ...

    def features(self, word: str) -> F32: ...


HOP = 1280


def clip_windows(
    det: FeatureDetector, pcm: Pcm, word: str, jitters: Sequence[int] = JITTERS, lead_hops: int = 19
) -> tuple[F32, F32]:
    """The embedding window and score of ``word`` at every hop of ``pcm``, once per start offset in
    ``jitters``, each pass from a reset detector after ``lead_hops`` of silence (the feature buffers'
    warm-up). Returns (windows: hops × windows × 96, scores: hops)."""
    wins: list[F32] = []
    scores: list[float] = []
    for j in jitters:
        det.reset()
        det.process(np.zeros(lead_hops * HOP, np.int16))
        x = pcm[j:]
        for i in range(0, len(x) - HOP + 1, HOP):
            scores.append(det.process(x[i : i + HOP]).get(word, 0.0))
            wins.append(det.features(word))
    det.reset()
    if not wins:
        return np.zeros((0, 0, 0), np.float32), np.zeros(0, np.float32)
    return np.stack(wins), np.asarray(scores, np.float32)


def enroll(
    det: FeatureDetector,
    word: str,
    positives: Sequence[Pcm],
    negatives: Sequence[Pcm],
    floor: float,
    report: Callable[[str], None] = log.info,
) -> Verifier:
    """Fit ``word``'s verifier on a user's recordings: windows of the wake word where the head's score
    is at least ``floor`` (the grey zone's lower edge — the windows the verifier will be asked about)
    and every window of their other speech."""
    pos = []
    for i, pcm in enumerate(positives):
        w, s = clip_windows(det, pcm, word)
        peak = float(s.max()) if len(s) else 0.0
        keep = w[s >= floor]
        report(f"wake recording {i + 1}: peak score {peak:.3f}, {len(keep)} window(s) at or above {floor}")
        if len(keep):
            pos.append(keep)
    if not pos:
        raise VerifierError(
            f"verifier {word}: the detector scored none of the {len(positives)} recordings at or above "
            f"{floor} — say the wake word closer to the microphone, or check the word"
        )
    neg = [w for pcm in negatives for w in [clip_windows(det, pcm, word, jitters=(0,))[0]] if len(w)]
    if not neg:
        raise VerifierError(f"verifier {word}: the other-speech recordings are shorter than one hop")
    return fit(np.concatenate(pos), np.concatenate(neg), word)


def verifiers_for(path: str, words: Sequence[str]) -> Mapping[str, Verifier]:
    """The configured verifier file's entries for the enabled words ({} when no file is configured)."""
    if not path:
        return {}
    got = load(Path(path).expanduser())
    return {w: v for w, v in got.items() if w in words}
