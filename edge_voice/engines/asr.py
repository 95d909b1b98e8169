"""Speech → text with whisper.cpp (pywhispercpp), tuned for short spoken commands.

- ``audio_ctx`` is sized to the utterance (whisper's encoder sees 50 frames per second of audio): a 3 s
  command encodes ~10 s instead of the 30 s window, about 4x faster. A floor (``asr.audio_ctx_floor``)
  avoids tiny.en's repetition loops on very short contexts. The context is a multiple of 256 frames:
  with flash attention (pywhispercpp's default) whisper.cpp 1.8.5 attends to the K/V rows padded up to the
  next multiple of 256 without a mask, so any other size makes a transcript depend on what the previous
  decodes left in those rows (upstream PR ggml-org/whisper.cpp#3941).
- Greedy, one pass (no temperature fallback), single segment, no timestamps, no context carried over from
  the previous utterance (a stale prompt makes whisper repeat the last command). A *fixed* prompt is
  another thing: with ``asr.bias_device_names`` the decoder starts from the configured device names
  ("Kitchen light, living room light, …, coffee machine."), the same for every utterance, so whisper
  spells them as configured ("hallway", not "valeway"); measured by ``edge-voice bench names``. With a
  prompt, tiny.en sometimes decodes a short question twice ("What time is it? What time is it?"): a
  transcript that is one sentence repeated is cut to one copy (``drop_echo``).
- Every decode is bounded. ``asr.max_tokens`` ends a segment gracefully (a tiny.en repetition loop,
  "turn on the light turn on the light …", is then collapsed to one repeat). whisper.cpp calls our abort
  callback during the encoder and after every decoder step, which stops it on the turn's
  CancelToken, on ``asr.max_decode_ms`` and on a token backstop. A speculative decode cancelled inside the
  encoder makes whisper.cpp log "failed to encode" on stderr: expected, not an error.
- Whisper hallucinates on non-speech ("you" on silence, "(water running)" on noise, "[BLANK_AUDIO]"): audio
  without voiced frames is never decoded, and tags/known silence phrases are never returned.

Threading: one instance, used only by the ASR thread; whisper.cpp releases the GIL while it runs and takes
it back only for the abort callback (~1 call per token).
"""

from __future__ import annotations

import logging
import re
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import AsrConfig, Config, DeviceEntry
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.engines.base import AbortReason, Float32, Transcription, to_float32
from edge_voice.models import registry
from edge_voice.models.ggml_check import NotGgml, check_whisper_ggml

log = logging.getLogger(__name__)

ENCODER_FRAMES_PER_S = 50  # whisper: 100 mel frames/s, conv stride 2
AUDIO_CTX_MARGIN = 32  # frames (0.64 s) beyond the audio: the encoder is not cut off mid-word
AUDIO_CTX_STEP = 256  # whisper.cpp's flash-attention K/V padding (see the module docstring)
MIN_AUDIO_MS = 100  # whisper.cpp stops when under 100 ms is left
WINDOW_S = 30  # whisper decodes longer audio in 30 s windows, each with its own token limit
TOKEN_BACKSTOP = 8  # abort this many decoder steps past the graceful limit (it should never trigger)


class FreeCores(Protocol):
    """How many cores other processes leave free now (``runtime.cpu.CpuMeter``)."""

    def free(self) -> int: ...


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
    truncated: bool = False  # stopped at asr.max_tokens (a repetition loop is collapsed to one repeat)
    threads: int = 0  # whisper.cpp threads of the (last) pass
    retried: bool = False  # the first pass ran out of time; this is the one-thread retry's result


def audio_ctx_for(n_samples: int, floor: int, max_ctx: int = 1500) -> int:
    """Encoder frames covering ``n_samples`` + margin, at least ``floor``, rounded up to a multiple of
    256, at most ``max_ctx`` (the model's 30 s window)."""
    frames = max(floor, -(-n_samples * ENCODER_FRAMES_PER_S // SAMPLE_RATE) + AUDIO_CTX_MARGIN)
    return min(max_ctx, -(-frames // AUDIO_CTX_STEP) * AUDIO_CTX_STEP)


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
SILENCE_PHRASES = frozenset(
    {
        "you",
        "thanks for watching",
        "thank you for watching",
        "please subscribe",
        "like and subscribe",
        "subtitles by the amaraorg community",
    }
)


def collapse_loop(text: str) -> str:
    """Cut a decode that ran into a repetition loop after the first repeat: "play jazz in the room play jazz
    in the room play jazz in the" → "play jazz in the room". Used only on decodes that hit the token limit.
    Text with no phrase said twice in a row is returned unchanged."""
    words = text.split()
    keys = [re.sub(r"[^\w']", "", w.lower()) for w in words]
    n = len(keys)
    for start in range(n):
        for period in range(1, (n - start) // 2 + 1):
            if keys[start : start + period] == keys[start + period : start + 2 * period]:
                return " ".join(words[: start + period]).rstrip(",;")
    return text


def drop_echo(text: str) -> str:
    """One copy of a transcript that is the same sentence (≥ 3 words) said twice or more: "What time is it?
    What time is it?" → "What time is it?". With a prompt, whisper tiny sometimes decodes a short utterance
    twice (bench names: 6 of 72 questions with the device-name prompt, none without). Only a whole
    transcript made of copies is cut, so "turn on the light and turn on the fan" is left alone."""
    words = text.split()
    keys = [re.sub(r"[^\w']", "", w.lower()) for w in words]
    n = len(keys)
    for period in range(3, n // 2 + 1):
        if n % period == 0 and all(keys[i] == keys[i % period] for i in range(period, n)):
            return " ".join(words[:period])
    return text


def clean_transcript(raw: str) -> str:
    """Drop whisper's non-speech tags ("[BLANK_AUDIO]", "(water running)", "*sigh*", "♪") and the phrases it
    produces on silence; "" when nothing spoken is left."""
    text = " ".join(_TAGS.sub(" ", raw).split())
    if not re.search(r"[A-Za-z0-9]", text):
        return ""
    if " ".join(re.sub(r"[^a-z0-9 ]", "", text.lower()).split()) in SILENCE_PHRASES:
        return ""
    return text


# whisper's prompt costs a decoder token per word on every decode, and whisper keeps at most ~224 prompt
# tokens: a home with 200 learned entities must not fill it (≈ 60 tokens)
MAX_PROMPT_CHARS = 240


def device_prompt(devices: Sequence[DeviceEntry]) -> str:
    """whisper's initial prompt naming the devices: "Kitchen light, living room light, fan." Names only,
    not aliases: each word costs the decoder a prompt token on every decode."""
    names: list[str] = []
    for name in dict.fromkeys(" ".join(d.name.lower().split()) for d in devices if d.name.strip()):
        if sum(len(n) + 2 for n in names) + len(name) > MAX_PROMPT_CHARS:
            break  # devices learned from HA come after the configured ones: those are kept
        names.append(name)
    text = ", ".join(names) + "."
    return text[0].upper() + text[1:] if names else ""


def asr_prompt(cfg: Config) -> str:
    """The fixed prompt the config asks for ("" = none)."""
    return device_prompt(cfg.intents.devices) if cfg.asr.bias_device_names else ""


# ------------------------------------------------------------------------------------------------ engine


def local_transcriber(cfg: Config, cores: FreeCores | None = None) -> Any:
    """The on-device engine ``asr.engine`` names: whisper.cpp (with the device-name prompt, following the
    free cores), Moonshine (its onnxruntime threads fixed at ``asr.threads``), or Moonshine for commands
    with whisper for the rest; Moonshine is imported only if chosen."""
    if cfg.asr.engine in ("moonshine", "moonshine_commands"):
        from edge_voice.engines.moonshine import CommandFirstTranscriber, MoonshineTranscriber

        moonshine = MoonshineTranscriber(cfg.asr, cfg.models_path)
        if cfg.asr.engine == "moonshine":
            return moonshine
        whisper = WhisperCppTranscriber(cfg.asr, cfg.models_path, prompt=asr_prompt(cfg), cores=cores)
        return CommandFirstTranscriber(cfg, moonshine, whisper)
    return WhisperCppTranscriber(cfg.asr, cfg.models_path, prompt=asr_prompt(cfg), cores=cores)


def decode_with_retry(
    run: Callable[[int, int], tuple[str, int, AbortReason]],
    cfg: AsrConfig,
    audio_ms: int,
    threads: int,
    retry: bool = True,
    on_retry: Callable[[int], None] | None = None,
) -> tuple[str, int, AbortReason, int, bool]:
    """``run(limit_ms, threads)`` once within ``asr.max_decode_ms``; if that pass ran out of *time* (not
    cancelled, not the token backstop), once more on one thread within ``cfg.retry_limit_ms(audio_ms)``.
    Returns (raw, steps, aborted, threads of the last pass, retried). Always on, not tied to
    ``service.adapt_to_load``: a decode out of time means a slow or contended CPU (a neighbour, a board
    slower than the limit assumed), and an empty transcript loses the user's turn; on one thread no ggml
    barrier waits on a core someone else holds. The retry's limit bounds it, so a degenerate decode still
    ends (at most ``max_decode_ms`` + the audio's length on top). ``on_retry(limit_ms)`` is told as the
    retry starts: the first pass may end well past its limit (the abort is only checked between graph
    nodes, seconds apart on a starved or emulated CPU), so the retry's deadline counts from its start."""
    raw, steps, aborted = run(cfg.max_decode_ms, threads)
    if aborted != "time" or not retry:
        return raw, steps, aborted, threads, False
    log.warning("asr: decode of %d ms audio ran out of time on %d threads; retrying", audio_ms, threads)
    limit_ms = cfg.retry_limit_ms(audio_ms)
    if on_retry is not None:
        on_retry(limit_ms)
    raw, steps, aborted = run(limit_ms, 1)
    return raw, steps, aborted, 1, True


class WhisperCppTranscriber:
    """``Transcriber`` on whisper.cpp. Load once at start-up (the model file is verified against the
    manifest); call ``transcribe``/``decode`` from the ASR thread only."""

    def __init__(
        self,
        cfg: AsrConfig,
        models_dir: Path | None = None,
        warm: bool = True,
        prompt: str = "",
        cores: FreeCores | None = None,
        retry: bool = True,
    ) -> None:
        """``prompt``: a fixed initial prompt for every decode (``asr_prompt``; "" = none). ``cores``: when
        given, each decode uses at most the cores other processes leave free (else ``asr.threads``).
        Whatever ``cores`` says, a decode that runs out of time is retried once on one thread with a limit
        scaled to the utterance (``decode_with_retry``); ``retry=False`` only for tests of the bare limit."""
        from pywhispercpp.model import Model  # lazy: native library

        logging.getLogger("pywhispercpp.model").setLevel(logging.WARNING)  # it logs every decode at INFO

        self.cfg = cfg
        self.model_path = registry.resolve(cfg.model, models_dir)
        try:  # whisper.cpp trusts the file: a truncated one loads, then SIGSEGVs at the first decode
            check_whisper_ggml(self.model_path)
        except (NotGgml, OSError) as exc:
            raise registry.ModelError(f"asr.model: {self.model_path}: {exc}") from None
        t0 = time.monotonic()
        extra: dict[str, Any] = {"initial_prompt": prompt} if prompt else {}
        # Parameters given here persist on the model object; per-call we only change audio_ctx.
        self._model: Any = Model(
            str(self.model_path),
            redirect_whispercpp_logs_to=None,  # its ~30 load lines (a bad file shows at the warm-up decode)
            n_threads=cfg.threads,
            language=cfg.language,
            no_context=True,
            no_timestamps=True,
            single_segment=True,
            temperature=0.0,
            temperature_inc=0.0,  # no fallback re-decodes: one bounded pass
            max_tokens=cfg.max_tokens,  # per segment: a loop ends gracefully, with its text
            suppress_blank=True,
            suppress_nst=True,  # non-speech tokens ("(", "[", "♪", …) cannot even be sampled
            print_progress=False,
            print_realtime=False,
            print_timestamps=False,
            **extra,
        )
        self.prompt = prompt
        self._prompt_set = prompt  # the prompt in the model's persistent params (a decode may change it)
        self.cores = cores
        self.retry = retry
        self.on_retry: Callable[[int], None] | None = None  # the ASR worker moves its deadline
        self._interrupts = 0  # ``interrupt`` calls so far: a decode under way aborts when it changes
        with self.model_path.open("rb") as f:  # ggml header: magic, n_vocab, n_audio_ctx, …
            _, _, self.max_audio_ctx = struct.unpack("<I2i", f.read(12))  # checked whole above
        self.last: DecodeResult | None = None
        log.info(
            "asr: loaded %s in %.0f ms (%d threads)",
            self.model_path.name,
            (time.monotonic() - t0) * 1e3,
            cfg.threads,
        )
        if warm:  # the first whisper_full allocates its compute buffers: pay that at start-up
            try:
                silence, ctx = np.zeros(SAMPLE_RATE, np.float32), audio_ctx_for(0, cfg.audio_ctx_floor)
                self._run(silence, ctx, NEVER, 64, cfg.max_decode_ms, cfg.threads)
            except Exception as exc:  # pywhispercpp does not report a failed load; a decode does
                raise registry.ModelError(
                    f"asr.model: whisper.cpp cannot use {self.model_path}: {exc!r}"
                ) from exc

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        result = self.decode(audio, cancel)
        return Transcription(result.text, result.aborted)

    def transcribe_prompted(self, audio: Pcm, cancel: CancelToken, prompt: str) -> Transcription:
        """``transcribe`` with ``prompt`` instead of the fixed prompt, for this decode only."""
        result = self.decode(audio, cancel, prompt)
        return Transcription(result.text, result.aborted)

    def transcribe_timed(self, audio: Pcm, cancel: CancelToken = NEVER) -> tuple[str, float]:
        """(text, wall-clock ms of the whole call)."""
        t0 = time.perf_counter()
        text = self.decode(audio, cancel).text
        return text, (time.perf_counter() - t0) * 1e3

    def decode(self, audio: Pcm, cancel: CancelToken = NEVER, prompt: str | None = None) -> DecodeResult:
        """Decode 16 kHz int16 speech; never raises for degenerate audio, never runs past its limits.
        ``prompt``: this decode's initial prompt (None: the fixed one, ``self.prompt``)."""
        want = self.prompt if prompt is None else prompt
        t0 = time.perf_counter()
        audio_ms = len(audio) * 1000 // SAMPLE_RATE
        if cancel.cancelled or audio_ms < MIN_AUDIO_MS or not has_voice(audio):
            result = DecodeResult(
                "",
                "",
                audio_ms,
                0,
                (time.perf_counter() - t0) * 1e3,
                0,
                "cancelled" if cancel.cancelled else "",
                True,
            )
        else:
            ctx = audio_ctx_for(len(audio), self.cfg.audio_ctx_floor, self.max_audio_ctx)
            windows = -(-len(audio) // (WINDOW_S * SAMPLE_RATE))
            max_steps = windows * (self.cfg.max_tokens + 1) + TOKEN_BACKSTOP
            x = to_float32(audio)
            threads = (
                self.cfg.threads if self.cores is None else max(1, min(self.cfg.threads, self.cores.free()))
            )

            def run(limit_ms: int, n: int) -> tuple[str, int, AbortReason]:
                return self._run(x, ctx, cancel, max_steps, limit_ms, n, want)

            raw, steps, aborted, threads, retried = decode_with_retry(
                run, self.cfg, audio_ms, threads, self.retry, self.on_retry
            )
            truncated = not aborted and steps > self.cfg.max_tokens
            text = "" if aborted else clean_transcript(collapse_loop(raw) if truncated else drop_echo(raw))
            ms = (time.perf_counter() - t0) * 1e3
            result = DecodeResult(
                text, raw, audio_ms, ctx, ms, steps, aborted, False, truncated, threads, retried
            )
        self.last = result
        log.debug(
            "asr: %r (raw %r) audio=%d ms ctx=%d steps=%d aborted=%s %.0f ms threads=%d retried=%s",
            result.text,
            result.raw,
            result.audio_ms,
            result.audio_ctx,
            result.steps,
            result.aborted or "no",
            result.decode_ms,
            result.threads,
            result.retried,
        )
        return result

    def interrupt(self) -> bool:
        """From any thread (shutdown): the decode under way aborts at whisper.cpp's next abort check, as
        if cancelled. A decode started later is not affected. Always True (no way to tell if one runs)."""
        self._interrupts += 1
        return True

    def close(self) -> None:
        """Free the whisper context now (not at interpreter exit, when pywhispercpp's finaliser fails)."""
        model, self._model = self._model, None
        if model is not None:
            model.__del__()
            model._ctx = None

    def _run(
        self,
        x: Float32,
        ctx: int,
        cancel: CancelToken,
        max_steps: int,
        limit_ms: int,
        threads: int,
        prompt: str | None = None,
    ) -> tuple[str, int, AbortReason]:
        deadline = time.monotonic() + limit_ms / 1e3
        calls = 0
        reason: AbortReason = ""
        interrupts = self._interrupts

        def abort() -> bool:
            # Called by whisper.cpp after the encoder and after each decoder pass (GIL held: keep it tiny).
            nonlocal calls, reason
            calls += 1
            if cancel.cancelled or self._interrupts != interrupts:
                reason = "cancelled"
            elif calls - 1 > max_steps:
                reason = "tokens"
            elif time.monotonic() > deadline:
                reason = "time"
            return bool(reason)

        # pywhispercpp keeps a parameter once given: the prompt is set only when it changes (the stop
        # check's "Stop." and back), so every other decode runs with exactly the params it always had
        extra: dict[str, Any] = {}
        if prompt is not None and prompt != self._prompt_set:
            extra["initial_prompt"] = prompt
            self._prompt_set = prompt
        segments = self._model.transcribe(x, audio_ctx=ctx, abort_callback=abort, n_threads=threads, **extra)
        raw = " ".join(s.text.strip() for s in segments).strip()
        return ("" if reason else raw), max(0, calls - 1), reason
