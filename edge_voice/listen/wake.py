"""openWakeWord on LiteRT: melspectrogram → embedding → one head per wake word, streamed in 80 ms hops.

Per 1280-sample hop: the melspectrogram model runs on the last 1760 samples (float32 of int16 values)
and gives 8 mel frames (scaled ``x/10 + 2``); the embedding model turns the last 76 mel frames into one
96-d vector; each head scores the last 16 embeddings. Mel frames and embeddings live in fixed *mirrored*
ring buffers (every row written twice, N apart) so the newest window is always one contiguous slice:
no deque copies per hop (6.6 → 1.8 ms per frame in the measurements in DEPENDENCIES.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_voice.core.config import ConfigError, WakeConfig
from edge_voice.core.messages import Pcm
from edge_voice.models import registry

log = logging.getLogger(__name__)

HOP_SAMPLES = 1280  # 80 ms at 16 kHz
MEL_INPUT_SAMPLES = 1760  # hop + 3 STFT hops of context (window 400, step 160) → 8 mel frames
MEL_BINS = 32
EMB_MEL_FRAMES = 76  # embedding window: 775 ms of mel frames
EMB_DIM = 96

F32 = npt.NDArray[np.float32]


class _MirroredRing:
    """A fixed ring of ``n`` rows; ``window()`` is the last ``n`` rows, oldest first, without copying."""

    def __init__(self, n: int, width: int) -> None:
        self.n = n
        self.buf: F32 = np.zeros((2 * n, width), np.float32)
        self.pos = 0  # next row to write == oldest row

    def fill(self, row: F32) -> None:
        self.buf[:] = row
        self.pos = 0

    def push(self, rows: F32) -> None:
        k = len(rows)
        if k >= self.n:  # only the last n rows survive
            rows, k = rows[-self.n :], self.n
        first = min(k, self.n - self.pos)
        p = self.pos
        self.buf[p : p + first] = rows[:first]
        self.buf[p + self.n : p + self.n + first] = rows[:first]
        rest = k - first
        if rest:
            self.buf[:rest] = rows[first:]
            self.buf[self.n : self.n + rest] = rows[first:]
        self.pos = (p + k) % self.n

    def window(self, last: int | None = None) -> F32:
        """The newest ``last`` rows (default all ``n``), oldest first: a contiguous view."""
        end = self.pos + self.n
        return self.buf[end - (last or self.n) : end]


@dataclass(slots=True)
class _Head:
    word: str
    interp: Any  # ai_edge_litert Interpreter
    in_index: int
    out_index: int
    windows: int  # embeddings the head looks at (16 for the stock heads)


class WakeGate:
    """The wake decision on the detector's per-hop scores, on sample positions only: a word fires when its
    score has been ≥ its threshold for ``patience`` hops in a row and it has not fired within
    ``refractory`` samples. The listener and ``bench wake`` both use this class (the bench replays the
    recorded scores through ``fire_hops``, its vectorised twin, checked against it in the unit tests).

    A second chance (``grey_floor``, per word with a user verifier): a hop scoring in the grey zone
    [floor, threshold) counts as above the threshold when ``verify(word)`` says so; ``verify`` is only
    called for such hops, so the verifier costs nothing while the room is quiet."""

    def __init__(
        self,
        threshold_for: Callable[[str], float],
        patience: int,
        refractory_samples: int,
        grey_floor: Mapping[str, float] | None = None,
    ) -> None:
        self._thr = threshold_for
        self._patience = patience
        self._refractory = refractory_samples
        self._floor = dict(grey_floor or {})
        self.reset()

    def reset(self) -> None:
        self._run: dict[str, int] = {}
        self._last_fire: dict[str, int] = {}

    def update(
        self,
        scores: Mapping[str, float],
        at: int,
        verify: Callable[[str], bool] | None = None,
        patience: int | None = None,
    ) -> list[tuple[float, str]]:
        """(score, word) for each word firing at hop end ``at`` (a sample position). ``patience``: this
        hop's own (the listener's while the device plays, ``wake.playback_patience``); the run of hops
        above the threshold is counted the same either way."""
        never = -(1 << 62)
        need = self._patience if patience is None else patience
        fired: list[tuple[float, str]] = []
        for w, s in scores.items():
            above = s >= self._thr(w)
            if not above and verify is not None and w in self._floor and s >= self._floor[w]:
                above = verify(w)
            run = self._run[w] = self._run.get(w, 0) + 1 if above else 0
            if run >= need and at - self._last_fire.get(w, never) >= self._refractory:
                self._last_fire[w] = at
                fired.append((s, w))
        return fired


def fire_hops(
    scores: npt.NDArray[Any],
    threshold: float,
    patience: int,
    refractory_samples: int,
    verified: npt.NDArray[np.bool_] | None = None,
) -> list[int]:
    """The hops at which ``WakeGate`` fires for one word, given that word's score at every hop of a
    contiguous stream (hop k ends at sample (k + 1) * HOP_SAMPLES). Vectorised for threshold sweeps.
    ``verified``: per hop, whether a grey-zone hop passed the verifier (the caller applies the floor)."""
    above = np.asarray(scores) >= threshold
    if verified is not None:
        above |= verified
    idx = np.arange(len(above))
    last_below = np.maximum.accumulate(np.where(above, -1, idx))
    candidates = np.nonzero(idx - last_below >= patience)[0]
    gap = -(-refractory_samples // HOP_SAMPLES)  # hops: (k - k_last) * HOP >= refractory
    out: list[int] = []
    i = 0
    while i < len(candidates):
        k = int(candidates[i])
        out.append(k)
        i = int(np.searchsorted(candidates, k + max(gap, 1)))
    return out


def _model_sources(cfg: WakeConfig) -> list[tuple[str, Path]]:
    """(word, verified model path) for every configured word and custom model."""
    out: list[tuple[str, Path]] = []
    for word in cfg.words:
        if "/" in word or word.endswith(".tflite"):
            out.append((Path(word).stem, registry.resolve(word)))
        else:
            known = sorted(n.removeprefix("wake-") for n in registry.load_manifest() if n.startswith("wake-"))
            if word not in known:  # named as the user wrote it, not as the manifest's model name
                raise ConfigError(
                    "wake.words", f"unknown wake word {word!r}; one of {', '.join(known)}, or a .tflite path"
                )
            out.append((word, registry.resolve(f"wake-{word}")))
    out.extend((Path(p).stem, registry.resolve(p)) for p in cfg.custom_models)
    names = [w for w, _ in out]
    dupes = sorted({w for w in names if names.count(w) > 1})
    if dupes:
        raise ConfigError(
            "wake.custom_models", f"duplicate wake word(s) {', '.join(dupes)} (also in wake.words)"
        )
    return out


class OpenWakeWordDetector:
    """``WakeDetector`` for openWakeWord models. Used by the listen thread only."""

    def __init__(self, cfg: WakeConfig) -> None:
        from ai_edge_litert.interpreter import Interpreter  # lazy: heavy native runtime

        def load(path: Path) -> Any:
            try:  # a corrupt or foreign file: one clear line and exit 78, not a traceback
                return Interpreter(model_path=str(path), num_threads=cfg.threads)
            except Exception as exc:
                raise registry.ModelError(
                    f"wake model {path}: not a usable .tflite model ({registry.first_line(exc)})"
                ) from None

        self._mel = load(registry.resolve("oww-melspectrogram"))
        mel_in = self._mel.get_input_details()[0]["index"]
        self._mel.resize_tensor_input(mel_in, [1, MEL_INPUT_SAMPLES])  # dynamic [-1, -1] input
        self._mel.allocate_tensors()
        self._mel_in = mel_in
        self._mel_out = self._mel.get_output_details()[0]["index"]

        self._emb = load(registry.resolve("oww-embedding"))
        self._emb.allocate_tensors()
        emb_shape = tuple(self._emb.get_input_details()[0]["shape"])
        if emb_shape[1:] != (EMB_MEL_FRAMES, MEL_BINS, 1):
            raise ValueError(f"wake: unexpected embedding model input shape {emb_shape}")
        self._emb_in = self._emb.get_input_details()[0]["index"]
        self._emb_out = self._emb.get_output_details()[0]["index"]

        self._heads: list[_Head] = []
        for word, path in _model_sources(cfg):
            interp = load(path)
            try:
                interp.allocate_tensors()
                shape = tuple(interp.get_input_details()[0]["shape"])
            except Exception as exc:
                raise registry.ModelError(
                    f"wake model {path}: not a usable .tflite model ({registry.first_line(exc)})"
                ) from None
            if len(shape) != 3 or shape[0] != 1 or shape[2] != EMB_DIM:
                raise registry.ModelError(
                    f"wake model {path}: not an openWakeWord head (input shape {shape})"
                )
            self._heads.append(
                _Head(
                    word,
                    interp,
                    interp.get_input_details()[0]["index"],
                    interp.get_output_details()[0]["index"],
                    int(shape[1]),
                )
            )
        self.words: tuple[str, ...] = tuple(h.word for h in self._heads)

        self._audio: F32 = np.zeros(MEL_INPUT_SAMPLES, np.float32)
        self._pending: Pcm = np.zeros(HOP_SAMPLES, np.int16)  # carry-over between calls
        self._n_pending = 0
        self._mels = _MirroredRing(EMB_MEL_FRAMES, MEL_BINS)
        self._embs = _MirroredRing(max(h.windows for h in self._heads), EMB_DIM)
        # openWakeWord starts its mel buffer at ones; the matching embedding is the neutral history.
        self._idle_embedding = self._embed(np.ones((EMB_MEL_FRAMES, MEL_BINS), np.float32))
        self.reset()
        log.info("wake: words %s, %d thread(s)", ", ".join(self.words), cfg.threads)

    def reset(self) -> None:
        self._audio[:] = 0.0
        self._n_pending = 0
        self._mels.fill(np.ones(MEL_BINS, np.float32))
        self._embs.fill(self._idle_embedding)

    def process(self, samples: Pcm) -> dict[str, float]:
        scores: dict[str, float] = {}
        i, n = 0, len(samples)
        while True:
            need = HOP_SAMPLES - self._n_pending
            if n - i < need:
                rest = n - i
                self._pending[self._n_pending : self._n_pending + rest] = samples[i:]
                self._n_pending += rest
                return scores
            if self._n_pending:
                self._pending[self._n_pending :] = samples[i : i + need]
                hop = self._pending
                self._n_pending = 0
            else:
                hop = samples[i : i + HOP_SAMPLES]
            i += need
            for word, score in self._hop(hop).items():
                if score > scores.get(word, -1.0):
                    scores[word] = score

    def features(self, word: str) -> F32:
        """A copy of the embedding window ``word``'s head scored at the last hop (windows × 96, oldest
        first): the input a grey-zone verifier re-scores (``listen.verifier``)."""
        h = next(h for h in self._heads if h.word == word)
        return self._embs.window(h.windows).copy()

    def _embed(self, mel_window: F32) -> F32:
        self._emb.set_tensor(self._emb_in, mel_window.reshape(1, EMB_MEL_FRAMES, MEL_BINS, 1))
        self._emb.invoke()
        out: F32 = self._emb.get_tensor(self._emb_out).reshape(EMB_DIM)
        return out

    def _hop(self, hop: Pcm) -> dict[str, float]:
        a = self._audio
        a[: MEL_INPUT_SAMPLES - HOP_SAMPLES] = a[HOP_SAMPLES:]
        a[MEL_INPUT_SAMPLES - HOP_SAMPLES :] = hop  # float32 of the int16 values (not scaled to ±1)
        self._mel.set_tensor(self._mel_in, a.reshape(1, MEL_INPUT_SAMPLES))
        self._mel.invoke()
        mel = self._mel.get_tensor(self._mel_out).reshape(-1, MEL_BINS)
        self._mels.push(mel / 10.0 + 2.0)
        self._embs.push(self._embed(self._mels.window()).reshape(1, EMB_DIM))
        scores: dict[str, float] = {}
        for h in self._heads:
            h.interp.set_tensor(h.in_index, self._embs.window(h.windows).reshape(1, h.windows, EMB_DIM))
            h.interp.invoke()
            scores[h.word] = float(h.interp.get_tensor(h.out_index).reshape(-1)[0])
        return scores
