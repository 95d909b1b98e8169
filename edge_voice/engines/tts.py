"""Text → speech with Piper (piper-tts 1.8): one ONNX voice loaded at start-up, synthesised sentence by
sentence in the TTS thread, plus a small cache of pre-synthesised fast-path confirmations.

``PiperVoice.load`` gives no way to pass onnxruntime session options, so the voice is built directly
from its dataclass fields with an ``InferenceSession`` whose intra-op thread count is ``tts.threads``:
on a 2-core box the LLM and TTS each get one core instead of fighting over both.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import TtsConfig
from edge_voice.core.messages import Pcm
from edge_voice.models import registry

log = logging.getLogger(__name__)

WARM_TEXT = "Ready."


def voice_paths(voice: str, models_dir: Path | None = None) -> tuple[Path, Path]:
    """(model .onnx, config .onnx.json), both verified when they are manifest entries: the config of
    manifest voice ``x`` is the entry ``x-config``; a custom .onnx path needs ``<path>.json`` beside it."""
    model = registry.resolve(voice, models_dir)
    config_entry = f"{voice}-config"
    if config_entry in registry.load_manifest():
        return model, registry.resolve(config_entry, models_dir)
    config = Path(f"{model}.json")
    if not config.is_file():
        raise registry.ModelError(f"Piper voice config missing: {config} (it must sit beside {model.name})")
    return model, config


class PiperSynthesizer:
    """``Synthesizer`` on Piper. Construct (loads the voice, ~0.4 s) and ``warm`` at start-up; call
    ``synthesize`` from the TTS thread only. ``sample_rate`` is the voice's native rate (22050 for joe)."""

    def __init__(self, cfg: TtsConfig, models_dir: Path | None = None) -> None:
        import onnxruntime  # lazy: heavy, and only the TTS needs it here
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig

        self.cfg = cfg
        t0 = time.monotonic()
        self.model_path, self.config_path = voice_paths(cfg.voice, models_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cfg.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Every sentence has a new input length. onnxruntime's arena keeps the largest region it ever
        # grew (by doubling) and its memory pattern plans per shape, so over days RSS stepped up on a
        # long sentence and never came down. Plain malloc/free plus the turn-end trim keeps it flat.
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        session = onnxruntime.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        config = PiperConfig.from_dict(json.loads(self.config_path.read_text(encoding="utf-8")))
        self._voice: Any = PiperVoice(session=session, config=config)
        self.sample_rate: int = int(config.sample_rate)
        noise, noise_w = (0.0, 0.0) if cfg.deterministic else (cfg.noise_scale, cfg.noise_w_scale)
        self._syn_config: Any = SynthesisConfig(
            length_scale=cfg.length_scale, noise_scale=noise, noise_w_scale=noise_w
        )
        self.load_ms = (time.monotonic() - t0) * 1000
        log.info(
            "tts: loaded %s (%d Hz, %d threads) in %.0f ms",
            self.model_path.name,
            self.sample_rate,
            cfg.threads,
            self.load_ms,
        )

    def synthesize(self, text: str, cancel: CancelToken) -> Generator[Pcm, None, None]:
        """Yield one int16 chunk per sentence of ``text`` at ``sample_rate``. ``cancel`` is checked
        before each sentence; on cancel (or when the caller closes the iterator) Piper's generator is
        closed, so no further sentence is synthesised."""
        if cancel.cancelled or not text.strip():
            return
        chunks = iter(self._voice.synthesize(text, syn_config=self._syn_config))
        try:
            for chunk in chunks:
                pcm: Pcm = np.ascontiguousarray(chunk.audio_int16_array, dtype=np.int16)
                if cancel.cancelled:
                    return
                yield pcm
                if cancel.cancelled:
                    return
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def synthesize_all(self, text: str, cancel: CancelToken = NEVER) -> Pcm:
        """All sentences of ``text`` as one array (phrase cache, ``edge-voice say``)."""
        parts = list(self.synthesize(text, cancel))
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def warm(self) -> float:
        """One short synthesis so the first real reply does not pay onnxruntime's first-run costs
        (and espeak-ng's data loading). Returns its duration in ms."""
        t0 = time.monotonic()
        self.synthesize_all(WARM_TEXT)
        ms = (time.monotonic() - t0) * 1000
        log.info("tts: warm-up synthesis took %.0f ms", ms)
        return ms


def _key(text: str) -> str:
    return " ".join(text.split())


class PhraseCache:
    """Pre-synthesised replies keyed by their exact text (whitespace-normalised), at the voice's rate.
    Bounded: beyond ``max_phrases`` the least recently used phrase is dropped (~60 KB per second of
    speech at 22 kHz). Thread-safe: filled by the TTS thread, read by whoever answers a fast-path turn."""

    def __init__(self, synth: PiperSynthesizer, max_phrases: int = 128) -> None:
        if max_phrases < 1:
            raise ValueError("max_phrases must be at least 1")
        self.synth = synth
        self.sample_rate = synth.sample_rate
        self.max_phrases = max_phrases
        self._pcm: OrderedDict[str, Pcm] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pcm)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and _key(text) in self._pcm

    def prepare(self, phrases: Iterable[str], cancel: CancelToken = NEVER) -> int:
        """Synthesise every phrase not cached yet (start-up; ~60–80 ms each on one core). Returns how
        many were added."""
        added = 0
        for text in phrases:
            if cancel.cancelled:
                break
            if text in self or not text.strip():
                continue
            self.put(text, self.synth.synthesize_all(text))
            added += 1
        return added

    def put(self, text: str, pcm: Pcm) -> None:
        with self._lock:
            self._pcm[_key(text)] = pcm
            self._pcm.move_to_end(_key(text))
            while len(self._pcm) > self.max_phrases:
                self._pcm.popitem(last=False)

    def get(self, text: str) -> Pcm | None:
        with self._lock:
            pcm = self._pcm.get(_key(text))
            if pcm is not None:
                self._pcm.move_to_end(_key(text))
            return pcm

    @property
    def total_samples(self) -> int:
        with self._lock:
            return sum(len(p) for p in self._pcm.values())
