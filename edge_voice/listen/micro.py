"""microWakeWord (pymicro-wakeword's models, from PyPI) as a second wake detector beside openWakeWord.

``bench wake-micro`` measured it on ``bench wake``'s positives and negatives: the two heads miss different
clips (microWakeWord catches the distant Piper voices openWakeWord loses; neither catches most espeak-ng
voices), so "either fires" recalls more at the same false accepts per hour. ``FusedWakeDetector`` keeps the
listener's one decision (``WakeGate``): it passes openWakeWord's per-hop scores on, and when microWakeWord's
output for a word exceeds its cutoff (its own rule: the mean of its sliding window) that word scores 1.0
for ``patience`` hops, so the gate fires on it exactly as the bench replayed it (``latch``).

Models: pymicro-wakeword's .tflite files (Apache-2.0, Open Home Foundation), verified against the manifest
like every model; its bundled TensorFlow Lite C library runs them (10 ms feature steps, an inference
every 30 ms). Used by the listen thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_voice.core.config import ConfigError, WakeConfig
from edge_voice.core.messages import Pcm
from edge_voice.models import registry

log = logging.getLogger(__name__)

MICRO_WORDS = ("hey_jarvis", "alexa", "hey_mycroft", "okay_nabu")  # what pymicro-wakeword 2.5.0 carries
SLIDING_WINDOW = 5  # every shipped model's manifest says 5 (probabilities averaged)


class MicroWakeDetector:
    """pymicro-wakeword's streaming models for ``words`` (those it carries) on one feature stream."""

    def __init__(self, words: tuple[str, ...]) -> None:
        import pymicro_wakeword
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures  # lazy: native library

        lib = next(iter((Path(pymicro_wakeword.__file__).parent / "lib").glob("*tensorflowlite_c.*")), None)
        if lib is None:
            raise registry.ModelError("pymicro-wakeword: its TensorFlow Lite library is missing")
        self.words = tuple(w for w in words if w in MICRO_WORDS)
        self._models: list[Any] = []
        for w in self.words:
            path = registry.resolve(f"micro-{w}")
            try:
                self._models.append(
                    MicroWakeWord(
                        w,
                        wake_word=w,
                        tflite_model=path,
                        probability_cutoff=0.5,  # unused: the cutoff is applied by the caller
                        sliding_window_size=SLIDING_WINDOW,
                        trained_languages=["en"],
                        libtensorflowlite_c_path=lib,
                    )
                )
            except Exception as exc:
                raise registry.ModelError(
                    f"wake model {path}: not a usable microWakeWord model ({registry.first_line(exc)})"
                ) from None
        self._features = MicroWakeWordFeatures()

    def reset(self) -> None:
        self._features.reset()
        for m in self._models:
            m.reset()  # (reloads the model: its streaming state lives in the interpreter)

    def process(self, samples: Pcm) -> dict[str, float]:
        """The highest output per word among the inference steps this call completed ({} if none)."""
        out: dict[str, float] = {}
        for f in self._features.process_streaming(np.ascontiguousarray(samples, np.int16).tobytes()):
            for w, m in zip(self.words, self._models, strict=True):
                p = m.process_streaming_prob(f)
                if p is not None and not m._features:  # an inference ran (every 3rd step): a new output
                    out[w] = max(out.get(w, 0.0), float(p))
        return out


def latch(fired: npt.NDArray[np.bool_], patience: int) -> npt.NDArray[np.bool_]:
    """Per hop: True for ``patience`` hops from each hop where microWakeWord fired (what
    ``FusedWakeDetector`` reports as 1.0), for the bench's replay."""
    out = np.asarray(fired, bool).copy()
    for k in range(1, patience):
        out[k:] |= fired[:-k]
    return out


class FusedWakeDetector:
    """``WakeDetector`` (and ``FeatureDetector``, the verifier's windows stay openWakeWord's): openWakeWord's
    scores, a word raised to 1.0 for ``patience`` hops when microWakeWord's output exceeds its cutoff."""

    def __init__(self, oww: Any, cfg: WakeConfig, micro: MicroWakeDetector | None = None) -> None:
        self._oww = oww
        self.words: tuple[str, ...] = oww.words
        self._micro = micro if micro is not None else MicroWakeDetector(micro_words(cfg, self.words))
        if not self._micro.words:
            raise ConfigError(
                "wake.micro",
                f"microWakeWord carries none of {', '.join(self.words)} ({', '.join(MICRO_WORDS)})",
            )
        self._cutoff: Mapping[str, float] = {
            w: c for w in self._micro.words if (c := cfg.micro_cutoff_for(w)) is not None
        }
        self._patience = cfg.patience
        self._peak: dict[str, float] = {}
        self._latched: dict[str, int] = {}
        self.fired = 0  # hops microWakeWord raised (for logs and tests)
        log.info("wake: microWakeWord beside openWakeWord for %s", ", ".join(self._micro.words))

    def reset(self) -> None:
        self._oww.reset()
        self._micro.reset()
        self._peak.clear()
        self._latched.clear()

    def features(self, word: str) -> Any:
        return self._oww.features(word)

    def process(self, samples: Pcm) -> dict[str, float]:
        scores: dict[str, float] = self._oww.process(samples)
        for w, p in self._micro.process(samples).items():
            self._peak[w] = max(self._peak.get(w, 0.0), p)
        if not scores:  # no hop completed: microWakeWord's outputs wait for the hop's end
            return scores
        for w, cutoff in self._cutoff.items():
            if self._peak.pop(w, 0.0) > cutoff:
                self._latched[w] = self._patience
                self.fired += 1
            left = self._latched.get(w, 0)
            if left and w in scores:
                scores[w] = 1.0
                self._latched[w] = left - 1
        return scores


def micro_words(cfg: WakeConfig, words: tuple[str, ...]) -> tuple[str, ...]:
    """The enabled words microWakeWord runs for: it carries them and they have a cutoff (measured or
    ``wake.micro_cutoffs``)."""
    return tuple(w for w in words if w in MICRO_WORDS and cfg.micro_cutoff_for(w) is not None)


def wake_detector(cfg: WakeConfig) -> Any:
    """The daemon's wake detector: openWakeWord, fused with microWakeWord when ``wake.micro`` is on and
    it runs for some enabled word (no model is loaded otherwise)."""
    from edge_voice.listen.wake import OpenWakeWordDetector

    oww = OpenWakeWordDetector(cfg)
    return FusedWakeDetector(oww, cfg) if cfg.micro and micro_words(cfg, oww.words) else oww
