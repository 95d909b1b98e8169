"""Speech → text with whisper.cpp (pywhispercpp), tuned for short spoken commands.

- ``audio_ctx`` is sized to the utterance (whisper's encoder sees 50 frames per second of audio): a 3 s
  command encodes ~7.7 s instead of the 30 s window, about 3x faster. A floor (``asr.audio_ctx_floor``)
  avoids tiny.en's repetition loops on very short contexts.
- Greedy, one pass (no temperature fallback), single segment, no timestamps, no context carried over from
  the previous utterance (a stale prompt makes whisper repeat the last command).
- Every decode is bounded: whisper.cpp calls our abort callback after the encoder and after every decoder
  step, which stops it on the turn's CancelToken, on ``asr.max_decode_ms`` and on ``asr.max_tokens``.
  The encoder pass itself cannot be interrupted (≈100 ms for a short command on a 2-core x86 box).
- Whisper hallucinates on non-speech ("you" on silence, "(water running)" on noise, "[BLANK_AUDIO]"): audio
  without voiced frames is never decoded, and tags/known silence phrases are never returned.

Threading: one instance, used only by the ASR thread; whisper.cpp releases the GIL while it runs and takes
it back only for the abort callback (~1 call per token).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge_voice import models
from edge_voice.cancel import NEVER, CancelToken
from edge_voice.config import AsrConfig
from edge_voice.engines.base import Float32, to_float32
from edge_voice.messages import SAMPLE_RATE, Pcm

log = logging.getLogger(__name__)

ENCODER_FRAMES_PER_S = 50  # whisper: 100 mel frames/s, conv stride 2
AUDIO_CTX_MARGIN = 32  # frames (0.64 s) beyond the audio: the encoder is not cut off mid-word
MIN_AUDIO_MS = 100  # whisper.cpp stops when under 100 ms is left

AbortReason = Literal["", "cancelled", "time", "tokens"]


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """What one ``decode`` did. ``text`` is what the pipeline gets; ``raw`` is whisper's own output."""

    text: str
    raw: str
    audio_ms: int
    audio_ctx: int  # 0 = not decoded
    decode_ms: float
    steps: int  # decoder passes (≈ tokens generated)
    aborted: AbortReason
    skipped: bool  # no voiced audio: whisper was not run


def audio_ctx_for(n_samples: int, floor: int, max_ctx: int = 1500) -> int:
    """Encoder frames covering ``n_samples`` + margin, at least ``floor``, rounded up to 32, at most
    ``max_ctx`` (the model's 30 s window)."""
    frames = -(-n_samples * ENCODER_FRAMES_PER_S // SAMPLE_RATE) + AUDIO_CTX_MARGIN
    return min(max_ctx, max(floor, -(-frames // 32) * 32))


# ------------------------------------------------------------------------------------- non-speech guards

_FRAME, _HOP = 640, 320  # 40 ms windows, 20 ms hop
_FFT = 2048
_PITCH_LAGS = slice(40, 320)  # 50–400 Hz fundamental
_BAND = (80.0, 1500.0)  # where voicing harmonics live; band-limiting makes noise aperiodic
VOICED_R = 0.45  # normalised autocorrelation peak of a voiced frame
VOICED_RUN = 3  # consecutive voiced frames (80 ms) needed; noise gives isolated ones at most
MIN_LEVEL_DBFS = -55.0


def has_voice(pcm: Pcm) -> bool:
    """Cheap periodicity check: True if some 80 ms stretch is voiced (harmonic, loud enough).

    Measured: white/pink noise at any level gives runs of ≤ 1 frame; Piper and espeak-ng speech gives
    ≥ 3 even at 0 dB SNR. A backstop behind the VAD, not a replacement (a steady hum passes it)."""
    x = pcm.astype(np.float32) / 32768.0
    if len(x) < _FRAME:
        return False
    n = 1 + (len(x) - _FRAME) // _HOP
    frames = x[np.arange(_FRAME)[None, :] + _HOP * np.arange(n)[:, None]]
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    frames = (frames - frames.mean(axis=1, keepdims=True)) * np.hanning(_FRAME).astype(np.float32)
    freqs = np.fft.rfftfreq(_FFT, 1 / SAMPLE_RATE)
    power = np.abs(np.fft.rfft(frames, _FFT, axis=1)) ** 2 * ((freqs >= _BAND[0]) & (freqs <= _BAND[1]))
    ac = np.fft.irfft(power, _FFT, axis=1)
    r = ac[:, _PITCH_LAGS].max(axis=1) / (ac[:, 0] + 1e-12)
    voiced = (r > VOICED_R) & (level > MIN_LEVEL_DBFS)
    run = best = 0
    for v in voiced:
        run = run + 1 if v else 0
        best = max(best, run)
    return best >= VOICED_RUN


_TAGS = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|[♪♫]")
# Whisper's stock outputs for silence or noise (never a useful command).
SILENCE_PHRASES = frozenset({
    "you", "thanks for watching", "thank you for watching", "please subscribe", "like and subscribe",
    "subtitles by the amaraorg community",
})


def clean_transcript(raw: str) -> str:
    """Drop whisper's non-speech tags ("[BLANK_AUDIO]", "(water running)", "*sigh*", "♪") and the phrases it
    produces on silence; "" when nothing spoken is left."""
    text = " ".join(_TAGS.sub(" ", raw).split())
    if not re.search(r"[A-Za-z0-9]", text):
        return ""
    if " ".join(re.sub(r"[^a-z0-9 ]", "", text.lower()).split()) in SILENCE_PHRASES:
        return ""
    return text


# ------------------------------------------------------------------------------------------------ engine


class WhisperCppTranscriber:
    """``Transcriber`` on whisper.cpp. Load once at start-up (the model file is verified against the
    manifest); call ``transcribe``/``decode`` from the ASR thread only."""

    def __init__(self, cfg: AsrConfig, models_dir: Path | None = None, warm: bool = True) -> None:
        from pywhispercpp.model import Model  # lazy: native library

        self.cfg = cfg
        self.model_path = models.resolve(cfg.model, models_dir)
        t0 = time.monotonic()
        # Parameters given here persist on the model object; per-call we only change audio_ctx.
        self._model: Any = Model(
            str(self.model_path),
            redirect_whispercpp_logs_to=None,  # its ~30 load lines; load errors still raise
            n_threads=cfg.threads,
            language=cfg.language,
            no_context=True,
            no_timestamps=True,
            single_segment=True,
            temperature=0.0,
            temperature_inc=0.0,  # no fallback re-decodes: one bounded pass
            suppress_blank=True,
            suppress_nst=True,  # non-speech tokens ("(", "[", "♪", …) cannot even be sampled
            print_progress=False,
            print_realtime=False,
            print_timestamps=False,
        )
        import _pywhispercpp as pw

        self.max_audio_ctx = int(pw.whisper_model_n_audio_ctx(self._model._ctx))
        self.last: DecodeResult | None = None
        log.info("asr: loaded %s in %.0f ms (%d threads)", self.model_path.name,
                 (time.monotonic() - t0) * 1e3, cfg.threads)
        if warm:  # the first whisper_full allocates its compute buffers: pay that at start-up
            self._run(np.zeros(SAMPLE_RATE, np.float32), cfg.audio_ctx_floor, NEVER, cfg.max_tokens)

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> str:
        return self.decode(audio, cancel).text

    def transcribe_timed(self, audio: Pcm, cancel: CancelToken = NEVER) -> tuple[str, float]:
        """(text, wall-clock ms of the whole call)."""
        t0 = time.perf_counter()
        text = self.decode(audio, cancel).text
        return text, (time.perf_counter() - t0) * 1e3

    def decode(self, audio: Pcm, cancel: CancelToken = NEVER) -> DecodeResult:
        """Decode 16 kHz int16 speech; never raises for degenerate audio, never runs past its limits."""
        t0 = time.perf_counter()
        audio_ms = len(audio) * 1000 // SAMPLE_RATE
        if cancel.cancelled or audio_ms < MIN_AUDIO_MS or not has_voice(audio):
            result = DecodeResult("", "", audio_ms, 0, (time.perf_counter() - t0) * 1e3, 0,
                                  "cancelled" if cancel.cancelled else "", True)
        else:
            ctx = audio_ctx_for(len(audio), self.cfg.audio_ctx_floor, self.max_audio_ctx)
            raw, steps, aborted = self._run(to_float32(audio), ctx, cancel, self.cfg.max_tokens)
            text = "" if aborted else clean_transcript(raw)
            result = DecodeResult(text, raw, audio_ms, ctx, (time.perf_counter() - t0) * 1e3, steps, aborted,
                                  False)
        self.last = result
        log.debug("asr: %r (raw %r) audio=%d ms ctx=%d steps=%d aborted=%s %.0f ms", result.text, result.raw,
                  result.audio_ms, result.audio_ctx, result.steps, result.aborted or "no", result.decode_ms)
        return result

    def _run(self, x: Float32, ctx: int, cancel: CancelToken, max_steps: int) -> tuple[str, int, AbortReason]:
        deadline = time.monotonic() + self.cfg.max_decode_ms / 1e3
        calls = 0
        reason: AbortReason = ""

        def abort() -> bool:
            # Called by whisper.cpp after the encoder and after each decoder pass (GIL held: keep it tiny).
            nonlocal calls, reason
            calls += 1
            if cancel.cancelled:
                reason = "cancelled"
            elif calls - 1 > max_steps:
                reason = "tokens"
            elif time.monotonic() > deadline:
                reason = "time"
            return bool(reason)

        segments = self._model.transcribe(x, audio_ctx=ctx, abort_callback=abort)
        raw = " ".join(s.text.strip() for s in segments).strip()
        return ("" if reason else raw), max(0, calls - 1), reason
