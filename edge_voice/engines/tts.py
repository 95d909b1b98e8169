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
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import TtsConfig
from edge_voice.core.messages import Pcm
from edge_voice.models import registry

log = logging.getLogger(__name__)

WARM_TEXT = "Ready."
MAX_PIECE_CHARS = 80  # Piper runs one sentence per ONNX call: a longer text is cut into pieces this long
_BREAKS = (".!?", ";:,", " ")  # where a piece may end, best first


def _spoken_len(text: str) -> int:
    return len(text) + 2 * sum(c.isdigit() for c in text)


def split_for_synthesis(text: str, max_chars: int = MAX_PIECE_CHARS) -> list[str]:
    """``text`` in pieces of at most ``max_chars`` characters, cut after a sentence end, else a clause
    mark, else a space, else anywhere (500 digits in a row). A digit counts as three characters: it is
    spoken as a word. Text that fits is one piece, unchanged, so
    ordinary replies keep Piper's own sentence prosody; cancel is checked between pieces, so no single
    synthesis runs longer than one piece (~80 characters ≈ 5–12 s of speech ≈ 1–3 s of CPU here)."""
    pieces: list[str] = []
    rest = text.strip()
    while _spoken_len(rest) > max_chars:
        n = max_chars
        while _spoken_len(rest[:n]) > max_chars:
            n -= 1
        head = rest[:n]
        cut = -1
        for marks in _BREAKS:
            cut = max(head.rfind(m) for m in marks)
            if cut >= n // 4:  # not a stub of a few characters
                break
        cut = cut + 1 if cut >= n // 4 else n
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p]


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


class Interrupted(RuntimeError):
    """A synthesis stopped mid-sentence by ``PiperSynthesizer.interrupt`` (shutdown)."""


class _InterruptibleSession:
    """Piper's ONNX session, each ``run`` with its own ``RunOptions`` so another thread can end it
    (``terminate``): onnxruntime then stops within one graph node. One sentence is a single ``run`` — up
    to ~20 s under emulation or on a starved board — and a thread still inside one when the interpreter
    finalizes aborts the process (Python pthread_exits it through onnxruntime's C++: ``terminate``)."""

    def __init__(self, session: Any) -> None:
        import onnxruntime

        self._session = session
        self._options_type = onnxruntime.RunOptions
        self._lock = threading.Lock()
        self._running: Any = None  # the RunOptions of the run in progress

    def __getattr__(self, name: str) -> Any:  # Piper reads the session's inputs/outputs
        return getattr(self._session, name)

    def run(self, output_names: Any, input_feed: Any) -> Any:
        options = self._options_type()
        with self._lock:
            self._running = options
        try:
            return self._session.run(output_names, input_feed, options)
        except Exception:
            if options.terminate:
                raise Interrupted("synthesis interrupted") from None
            raise
        finally:
            with self._lock:
                self._running = None

    def interrupt(self) -> bool:
        """End the run in progress, if any (True if there was one). A run that starts later is not
        affected: the caller stops further work by its own means and calls again while it waits."""
        with self._lock:
            if self._running is None:
                return False
            self._running.terminate = True
            return True


def _until_interrupted(chunks: Iterator[Any]) -> Generator[Any, None, None]:
    """Piper's chunks, ending quietly when ``interrupt`` ended the sentence under way (a shutdown)."""
    try:
        yield from chunks
    except Interrupted:
        log.info("tts: synthesis interrupted")


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
        try:  # a corrupt or foreign file: one clear line and exit 78, not a traceback and a restart loop
            session = onnxruntime.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise registry.ModelError(
                f"tts voice {self.model_path}: not a usable ONNX model ({registry.first_line(exc)})"
            ) from None
        try:
            config = PiperConfig.from_dict(json.loads(self.config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise registry.ModelError(
                f"tts voice config {self.config_path}: not a Piper voice config ({registry.first_line(exc)})"
            ) from None
        self._session = _InterruptibleSession(session)
        self._voice: Any = PiperVoice(session=self._session, config=config)
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
        """Yield one int16 chunk per sentence of ``text`` at ``sample_rate`` (a sentence longer than
        ``MAX_PIECE_CHARS`` in pieces, see ``split_for_synthesis``). ``cancel`` is checked before each
        sentence; on cancel (or when the caller closes the iterator) Piper's generator is closed, so no
        further sentence is synthesised. At most ``tts.max_reply_s`` of audio is yielded."""
        if cancel.cancelled or not text.strip():
            return
        left = round(self.cfg.max_reply_s * self.sample_rate)
        for piece in split_for_synthesis(text):
            chunks = iter(self._voice.synthesize(piece, syn_config=self._syn_config))
            try:
                for chunk in _until_interrupted(chunks):
                    pcm: Pcm = np.ascontiguousarray(chunk.audio_int16_array, dtype=np.int16)
                    if cancel.cancelled:
                        return
                    if len(pcm) >= left:
                        log.warning("tts: text cut at tts.max_reply_s = %.0f s", self.cfg.max_reply_s)
                        yield pcm[:left]
                        return
                    left -= len(pcm)
                    yield pcm
                    if cancel.cancelled:
                        return
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

    def interrupt(self) -> bool:
        """From any thread (shutdown): end the ONNX run in progress within one graph node; the
        synthesising thread gets ``Interrupted``. True if a run was in progress."""
        return self._session.interrupt()

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


CACHE_MAX_BYTES = 16 << 20  # ~190 s of 22 kHz speech: 128 confirmations of ~1 s take ~6 MB


class PhraseCache:
    """Pre-synthesised replies keyed by their exact text (whitespace-normalised), at the voice's rate.
    Bounded in count and in bytes: beyond ``max_phrases`` or ``max_bytes`` the least recently used phrases
    are dropped (~44 KB per second of speech at 22 kHz); a phrase above an eighth of ``max_bytes`` is
    never kept. ``synth`` is the on-device voice: the cache is filled locally, never through a remote
    server (whose replies are not ours to keep). Thread-safe: filled by the TTS thread, read by whoever
    answers a fast-path turn."""

    def __init__(
        self, synth: PiperSynthesizer, max_phrases: int = 128, max_bytes: int = CACHE_MAX_BYTES
    ) -> None:
        if max_phrases < 1:
            raise ValueError("max_phrases must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.synth = synth
        self.sample_rate = synth.sample_rate
        self.max_phrases = max_phrases
        self.max_bytes = max_bytes
        self._pcm: OrderedDict[str, Pcm] = OrderedDict()
        self._bytes = 0
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
        if pcm.nbytes > self.max_bytes // 8:
            log.warning("tts: phrase %r not cached: %d bytes of audio", text[:40], pcm.nbytes)
            return
        key = _key(text)
        with self._lock:
            old = self._pcm.pop(key, None)
            self._bytes -= old.nbytes if old is not None else 0
            self._pcm[key] = pcm
            self._bytes += pcm.nbytes
            while len(self._pcm) > self.max_phrases or self._bytes > self.max_bytes:
                self._bytes -= self._pcm.popitem(last=False)[1].nbytes

    @property
    def nbytes(self) -> int:
        """Bytes of audio held."""
        with self._lock:
            return self._bytes

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
