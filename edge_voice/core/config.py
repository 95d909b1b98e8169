"""One frozen configuration tree, built once from TOML plus ``EDGE_VOICE_*`` environment overrides.

Every section is a frozen dataclass; the loader walks the TOML table against the dataclass fields, so an
unknown key, a wrong type or an out-of-range value fails at start-up with the dotted key and what is
allowed (``ConfigError``; the CLI exits 78 so systemd does not restart-loop on a bad file).

Environment overrides: ``EDGE_VOICE_<SECTION>__<KEY>=value`` (double underscore between levels), e.g.
``EDGE_VOICE_ENDPOINT__SILENCE_END_MS=400``. Values are parsed as TOML scalars, falling back to a string.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import reprlib
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from edge_voice.core.intent import norm_device_name
from edge_voice.core.messages import SAMPLE_RATE

DEFAULT_CONFIG_PATH = Path("/etc/edge-voice/config.toml")
ENV_PREFIX = "EDGE_VOICE_"


class ConfigError(ValueError):
    """A configuration key is unknown or its value is not allowed. ``key`` is the dotted name."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config: {key}: {message}")
        self.key = key
        self.message = message


def _require(key: str, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, f"must be {allowed}")


def _check_range(section: str, name: str, value: float, lo: float, hi: float) -> None:
    _require(f"{section}.{name}", lo <= value <= hi, f"between {lo} and {hi} (got {value})")


def tcp_host_port(uri: str) -> tuple[str, int] | None:
    """``tcp://host:port`` (a Wyoming server's address) → (host, port); None if ``uri`` is not one."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    if parts.scheme != "tcp" or not parts.hostname or not port or parts.path not in ("", "/"):
        return None
    return parts.hostname, port


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """Audio I/O. Internally everything is 16 kHz mono int16; the output rate is the speaker's."""

    input_device: str = ""  # "" = system default; else a substring of the device name or an index
    output_device: str = ""
    output_rate_hz: int = 0  # 0 = the TTS voice's native rate
    output_chunk_ms: int = 20  # playback write size: an interruption is heard within one chunk
    volume: float = 1.0
    # capture block: one VAD frame, so a pause is seen the moment its frame is complete (80 ms blocks
    # made every endpoint decision wait 0–80 ms, ~40 ms on average, for the rest of the block)
    frame_ms: int = 32
    capture_queue_frames: int = 125  # 4 s of 32 ms frames; overflow drops the oldest frame and counts it
    # cancel the device's own voice in the microphone (WebRTC AEC3, the played audio as reference):
    # "auto" = on unless the input is a sound server's echo-cancelled source or the package is missing
    echo_cancel: str = "auto"
    echo_canceller: str = "linear"  # "linear" (numpy NLMS: keeps the user's voice) | "webrtc" (AEC3)
    echo_delay_ms: int = 0  # speaker → microphone delay hint for the webrtc canceller; 0 = estimate it
    echo_guard: bool = True  # drop a wake word that the device itself is playing (what cancellation leaks)
    # said once at start-up when the echo is cancelled in process: the canceller starts cold, and ~5 s of
    # the device's voice in the room converge it before the first reply (design note 302); "" = silent
    echo_greeting: str = (
        "Hello. The voice assistant is ready and listening. Say the wake word whenever you need me, "
        "even while I am talking."
    )
    realtime_priority: int = 10  # SCHED_FIFO for the capture and playback threads where allowed; 0 = off

    def __post_init__(self) -> None:
        _require("audio.echo_cancel", self.echo_cancel in ("auto", "on", "off"), '"auto", "on" or "off"')
        _require("audio.echo_canceller", self.echo_canceller in ("linear", "webrtc"), '"linear" or "webrtc"')
        _check_range("audio", "echo_delay_ms", self.echo_delay_ms, 0, 500)
        _require("audio.echo_greeting", len(self.echo_greeting) <= 500, "at most 500 characters")
        _check_range("audio", "output_rate_hz", self.output_rate_hz, 0, 192000)
        _require(
            "audio.output_rate_hz",
            self.output_rate_hz == 0 or self.output_rate_hz >= 8000,
            "0 (native) or at least 8000",
        )
        _check_range("audio", "output_chunk_ms", self.output_chunk_ms, 5, 100)
        _check_range("audio", "volume", self.volume, 0.0, 2.0)
        _check_range("audio", "frame_ms", self.frame_ms, 10, 80)
        _check_range("audio", "capture_queue_frames", self.capture_queue_frames, 2, 1000)
        _check_range("audio", "realtime_priority", self.realtime_priority, 0, 99)

    @property
    def frame_samples(self) -> int:
        """The capture block in samples at the internal 16 kHz."""
        return self.frame_ms * SAMPLE_RATE // 1000


# Per-word thresholds chosen by `edge-voice bench wake` (bench-results/wake.json) with patience 3: the
# best recall on its synthetic positives with ≤ 0.5 false accepts per hour (here and one threshold step
# lower) on 3.1 h of generated negatives. An entry in `wake.thresholds` overrides a word's;
# `wake.threshold` is for words without one (custom heads).
MEASURED_WAKE_THRESHOLDS: Mapping[str, float] = types.MappingProxyType(
    {"hey_jarvis": 0.475, "alexa": 0.15, "hey_mycroft": 0.175, "hey_rhasspy": 0.7, "okay_nabu": 0.1}
)

# microWakeWord's cutoff per word beside openWakeWord at its own default (wake.micro): from bench
# wake-micro (either fires, <= 0.5 FA/h also one cutoff step lower). hey_mycroft has none: its model
# fired on the negatives at every cutoff that recalled anything, so it is not run for that word.
MEASURED_MICRO_CUTOFFS: Mapping[str, float] = types.MappingProxyType(
    {"hey_jarvis": 0.93, "alexa": 0.93, "okay_nabu": 0.75}
)


@dataclass(frozen=True, slots=True)
class WakeConfig:
    """Wake words: openWakeWord heads on LiteRT. A word is a manifest name (``hey_jarvis``) or a path."""

    words: tuple[str, ...] = ("hey_jarvis",)
    threshold: float = 0.5  # words without a measured default (MEASURED_WAKE_THRESHOLDS)
    thresholds: Mapping[str, float] = field(default_factory=dict)  # per-word override
    refractory_ms: int = 2000  # no second detection of the same word within this time
    patience: int = 3  # 80 ms hops in a row at or above the threshold before a word fires (bench wake)
    # the same while the device's own sound is playing and cancelled in process; 0 = wake.patience. Off by
    # default: with the canceller warm 3 catches every barge-in of bench echo's replay, and 2 fires ~1/hour
    # on the negatives with or without a reply (design notes 262-263)
    playback_patience: int = 0
    warmup_ms: int = 1500  # feature buffers warm up after a reset; detections ignored meanwhile
    custom_models: tuple[str, ...] = ()  # extra .tflite heads; the word is the file stem
    threads: int = 1
    # A second chance for the enrolled user (``edge-voice wake enroll``): a hop scoring in the grey zone
    # [verifier_floor, threshold) counts as above the threshold when the user's verifier gives at least
    # verifier_threshold. Values from ``bench wake`` (second_chance); "" = no verifier.
    verifier: str = ""
    verifier_floor: float = 0.05
    verifier_threshold: float = 0.98
    # A second detector: microWakeWord (pymicro-wakeword's models) beside openWakeWord for the words it
    # carries; a word fires when either does (microWakeWord at its cutoff, MEASURED_MICRO_CUTOFFS unless
    # micro_cutoffs says otherwise). Default and cutoffs from ``bench wake-micro``.
    micro: bool = True
    micro_cutoffs: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require("wake.words", len(self.words) + len(self.custom_models) > 0, "a non-empty list")
        for word, cut in self.micro_cutoffs.items():
            _check_range("wake.micro_cutoffs", word, cut, 0.01, 0.9999)
        _check_range("wake", "verifier_floor", self.verifier_floor, 0.01, 0.999)
        _check_range("wake", "verifier_threshold", self.verifier_threshold, 0.5, 0.9999)
        _check_range("wake", "threshold", self.threshold, 0.01, 0.999)
        for word, thr in self.thresholds.items():
            _check_range("wake.thresholds", word, thr, 0.01, 0.999)
        _check_range("wake", "refractory_ms", self.refractory_ms, 0, 60000)
        _check_range("wake", "patience", self.patience, 1, 10)
        _check_range("wake", "playback_patience", self.playback_patience, 0, 10)
        _check_range("wake", "warmup_ms", self.warmup_ms, 0, 10000)
        _check_range("wake", "threads", self.threads, 1, 8)

    def threshold_for(self, word: str) -> float:
        return self.thresholds.get(word, MEASURED_WAKE_THRESHOLDS.get(word, self.threshold))

    def micro_cutoff_for(self, word: str) -> float | None:
        """microWakeWord's cutoff for ``word``; None: it does not run for that word."""
        return self.micro_cutoffs.get(word, MEASURED_MICRO_CUTOFFS.get(word))


@dataclass(frozen=True, slots=True)
class VadConfig:
    """Silero VAD (ONNX) on 512-sample frames."""

    threshold: float = 0.5
    threads: int = 1

    def __post_init__(self) -> None:
        _check_range("vad", "threshold", self.threshold, 0.05, 0.95)
        _check_range("vad", "threads", self.threads, 1, 8)


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """The endpointer counts samples; these are converted to samples at 16 kHz."""

    pre_roll_ms: int = 300
    min_speech_ms: int = 150  # voiced time before speech counts as started (rejects blips)
    silence_end_ms: int = 500  # end-of-speech silence that confirms the endpoint
    speculative_silence_ms: int = 64  # silence after which a speculative decode starts (0 = off)
    # the decode starts sooner when the voice's energy has been this quiet (35 dB under the utterance's
    # loud part) while the VAD, which trails the acoustic end by ~70 ms, still says speech (0 = off)
    early_decode_ms: int = 32
    # silence after which a speculative transcript that is a complete command ends the turn
    # (intents.early_commit); the decode itself started at speculative_silence_ms
    commit_silence_ms: int = 160
    # silence after which a speculative transcript that is a complete question ("…?", not ending mid-clause)
    # ends the turn and its answer may play, before silence_end_ms (0 = questions wait for silence_end_ms)
    question_commit_silence_ms: int = 400
    max_utterance_ms: int = 15000
    no_speech_timeout_ms: int = 4000  # after wake / listen, give up if no speech starts
    wake_tail_ms: int = 300  # voice still running this long after a wake detection = the command began
    # speech that goes on after the turn was committed ("turn on the light … and the fan") is heard and
    # acted on as a continuation, never dropped
    continuation: bool = True
    # a continuation is decoded in its own pauses while the committed turn's reply is prepared or plays
    # (speculatively, as a first utterance is), so it is acted on as soon as that reply is over
    decode_continuation: bool = True
    # a transcript that stops mid-clause ("turn on the light and", "what is the") waits for its end this
    # long from the last word (0 = off: the silence alone ends the turn)
    unfinished_silence_ms: int = 1200

    def __post_init__(self) -> None:
        _check_range("endpoint", "wake_tail_ms", self.wake_tail_ms, 0, 2000)
        _check_range("endpoint", "early_decode_ms", self.early_decode_ms, 0, 1000)
        _check_range("endpoint", "question_commit_silence_ms", self.question_commit_silence_ms, 0, 5000)
        _check_range("endpoint", "unfinished_silence_ms", self.unfinished_silence_ms, 0, 10000)
        _require(
            "endpoint.unfinished_silence_ms",
            self.unfinished_silence_ms == 0 or self.unfinished_silence_ms > self.silence_end_ms,
            f"0 or above endpoint.silence_end_ms ({self.silence_end_ms})",
        )
        _check_range("endpoint", "pre_roll_ms", self.pre_roll_ms, 0, 2000)
        _check_range("endpoint", "min_speech_ms", self.min_speech_ms, 0, 2000)
        _check_range("endpoint", "silence_end_ms", self.silence_end_ms, 100, 5000)
        _check_range("endpoint", "speculative_silence_ms", self.speculative_silence_ms, 0, 5000)
        _require(
            "endpoint.speculative_silence_ms",
            self.speculative_silence_ms < self.silence_end_ms,
            f"0 or below endpoint.silence_end_ms ({self.silence_end_ms})",
        )
        # at or past silence_end_ms it simply never comes before the endpoint, which commits anyway
        _check_range("endpoint", "commit_silence_ms", self.commit_silence_ms, 0, 5000)
        _check_range("endpoint", "max_utterance_ms", self.max_utterance_ms, 1000, 120000)
        _check_range("endpoint", "no_speech_timeout_ms", self.no_speech_timeout_ms, 500, 60000)


RETRY_MS_PER_AUDIO_S = 1000  # the decode retry's extra time per second of audio (real time on one thread)


@dataclass(frozen=True, slots=True)
class AsrConfig:
    """whisper.cpp through pywhispercpp (or Moonshine base on onnxruntime: ``engine``)."""

    # the on-device engine: "moonshine" (English only) encodes only the audio there is, whisper never
    # less than 10.24 s; it has no prompt (bias_device_names does not apply). "moonshine_commands": Moonshine
    # first, whisper for whatever the rules do not take as a command
    engine: Literal["whisper", "moonshine", "moonshine_commands"] = "whisper"
    model: str = "whisper-tiny.en-q8_0"  # a derived manifest entry, or a path to a ggml .bin
    threads: int = 2
    audio_ctx_floor: int = 512  # encoder frames (50/s); below ~384 tiny.en loops; used rounded up to 256
    max_decode_ms: int = 3000  # abort callback: a degenerate decode never stalls a turn
    max_tokens: int = 64
    language: str = "en"
    backend: Literal["local", "wyoming"] = "local"  # wyoming: a remote server first, whisper.cpp as fallback
    uri: str = ""  # backend = "wyoming": tcp://host:port of e.g. wyoming-faster-whisper
    timeout_ms: int = 3000  # connect, and the transcript after the audio, each within this
    # whisper's decoder starts from the configured device names ("Kitchen light, …, fan."): names heard
    # right more often (bench names); local whisper.cpp only, devices as configured at start-up
    bias_device_names: bool = True

    def __post_init__(self) -> None:
        _require("asr.model", bool(self.model), "a manifest model name or a file path")
        _require(
            "asr.engine",
            self.engine in ("whisper", "moonshine", "moonshine_commands"),
            '"whisper", "moonshine" or "moonshine_commands"',
        )
        _require(
            "asr.engine",
            self.engine == "whisper" or self.language == "en",
            'moonshine is English only (asr.language = "en")',
        )
        _check_range("asr", "threads", self.threads, 1, 8)
        _check_range("asr", "audio_ctx_floor", self.audio_ctx_floor, 64, 1500)
        # up to 10 min: an emulated Pi (qemu-user, `make target-check`) encodes 30–150x slower than a Pi
        _check_range("asr", "max_decode_ms", self.max_decode_ms, 100, 600000)
        _check_range("asr", "max_tokens", self.max_tokens, 8, 448)
        _check_range("asr", "timeout_ms", self.timeout_ms, 100, 120000)
        _require(
            "asr.uri",
            self.backend != "wyoming" or tcp_host_port(self.uri) is not None,
            f'tcp://host:port when asr.backend = "wyoming" (got {_brief(self.uri)})',
        )

    def retry_limit_ms(self, audio_ms: int) -> int:
        """The limit of the one retry (on one thread) of a decode that ran out of ``max_decode_ms`` beside
        a busy process: scaled to the utterance, so a slow box gives a late transcript, not an empty one."""
        return self.max_decode_ms + audio_ms * RETRY_MS_PER_AUDIO_S // 1000


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """A device the fast path can command. ``aliases`` are other names a user may say. ``entity_id``: its
    Home Assistant entity, carried in the MQTT intent payload (``ha_entity_id`` derives one when unset).
    ``area``: the room it is in ("turn off the lights in the kitchen"); learned devices carry HA's area."""

    name: str
    kind: Literal["light", "switch", "fan", "media"] = "light"
    aliases: tuple[str, ...] = ()
    entity_id: str = ""
    area: str = ""

    def __post_init__(self) -> None:
        _require(
            "intents.devices.entity_id",
            not self.entity_id or _ENTITY_ID.fullmatch(self.entity_id) is not None,
            'a Home Assistant entity id, e.g. "light.kitchen"',
        )

    @property
    def ha_entity_id(self) -> str:
        """``entity_id``, else what Home Assistant names an entity called ``name``: "kitchen light" (a
        light) → light.kitchen_light."""
        if self.entity_id:
            return self.entity_id
        slug = re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") or "unnamed"
        return f"{HA_DOMAINS[self.kind]}.{slug}"


HA_DOMAINS = {"light": "light", "switch": "switch", "fan": "fan", "media": "media_player"}
_ENTITY_ID = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+")


DEFAULT_DEVICES: tuple[DeviceEntry, ...] = (
    DeviceEntry("kitchen light", "light", ("kitchen lights", "kitchen lamp")),
    DeviceEntry("living room light", "light", ("living room lights", "lounge light", "living room lamp")),
    DeviceEntry("bedroom light", "light", ("bedroom lights", "bedroom lamp")),
    DeviceEntry("hallway light", "light", ("hall light", "hallway lights")),
    DeviceEntry("fan", "fan", ("ceiling fan",)),
    DeviceEntry("coffee machine", "switch", ("coffee maker",)),
)


@dataclass(frozen=True, slots=True)
class IntentsConfig:
    enabled: bool = True
    devices: tuple[DeviceEntry, ...] = DEFAULT_DEVICES
    early_commit: bool = True  # a speculative transcript that is a complete command ends the turn early
    # "home_assistant": a device command goes to Home Assistant's conversation API ([home_assistant]),
    # the fast path serving when it is unreachable or slow
    backend: Literal["local", "home_assistant"] = "local"
    # Home Assistant's sentence templates (hassil + home-assistant-intents) after the rule matcher, with
    # HA's intent and slot names in the MQTT payload (engines/ha_sentences)
    ha_sentences: bool = True
    # the fast path's language: any that home-assistant-intents ships ("de", "fr", "pt-BR", …). "en" =
    # our rules, then HA's templates; another = HA's templates for it alone, answered with HA's own
    # response sentences (speech recognition, the voice, the LLM and error phrases stay as configured)
    language: str = "en"

    def __post_init__(self) -> None:
        for i, dev in enumerate(self.devices):
            # a name with no word in it ("", "!") matched every device-less command: "turn off" →
            # "Turning off the ." (session 15)
            for j, name in enumerate((dev.name, *dev.aliases)):
                key = f"intents.devices[{i}].name" if j == 0 else f"intents.devices[{i}].aliases[{j - 1}]"
                _require(key, bool(norm_device_name(name)), f"a name with a word in it (got {_brief(name)})")
        if self.language == "en":
            return
        try:
            from home_assistant_intents import get_languages
        except ImportError:
            raise ConfigError(
                "intents.language",
                '"en" unless home-assistant-intents is installed (requirements/runtime.txt)',
            ) from None
        known = get_languages()
        _require(
            "intents.language",
            self.language in known,
            f"one of {', '.join(known)} (got {_brief(self.language)})",
        )
        # the English rules are the only other matcher: without HA's templates nothing would understand it
        _require("intents.ha_sentences", self.ha_sentences, f'true when intents.language = "{self.language}"')


@dataclass(frozen=True, slots=True)
class HomeAssistantConfig:
    """Home Assistant's conversation API (``intents.backend = "home_assistant"``). The long-lived access
    token is read from the environment variable ``token_env``, never from the file."""

    url: str = "http://homeassistant.local:8123"
    token_env: str = "EDGE_VOICE_HA_TOKEN"
    timeout_ms: int = 2000  # connect and the whole answer within this, else the fast path answers
    language: str = "en"
    agent_id: str = ""  # "" = Home Assistant's default agent
    retry_after_s: int = 30  # after a failure the fast path serves this long before HA is tried again
    learn_devices: bool = False  # HA's lights, switches, fans, media players become the fast path's devices

    def __post_init__(self) -> None:
        from urllib.parse import urlsplit

        try:  # .port raises on "ha:abc" and on a port out of range
            u = urlsplit(self.url)
            ok = u.scheme in ("http", "https") and bool(u.hostname) and (u.port is None or u.port > 0)
        except ValueError:
            ok = False
        _require("home_assistant.url", ok, "an http(s):// URL with a host and a valid port")
        _check_range("home_assistant", "timeout_ms", self.timeout_ms, 100, 60000)
        _check_range("home_assistant", "retry_after_s", self.retry_after_s, 0, 3600)
        _require("home_assistant.token_env", bool(self.token_env), "an environment variable's name")


SKILL_NAMES = ("units", "calendar", "holidays", "countries", "words", "chat", "boundary")


@dataclass(frozen=True, slots=True)
class SkillsConfig:
    """Answers before the LLM (engines/skills): offline knowledge and honest boundaries, in this order."""

    enabled: tuple[str, ...] = SKILL_NAMES
    country: str = "US"  # whose public holidays ("when is Thanksgiving")

    def __post_init__(self) -> None:
        for i, name in enumerate(self.enabled):
            _require(f"skills.enabled[{i}]", name in SKILL_NAMES, f"one of {', '.join(SKILL_NAMES)}")
        _require(
            "skills.country", len(self.country) == 2 and self.country.isalpha(), "an ISO 3166 code, e.g. US"
        )


@dataclass(frozen=True, slots=True)
class LlmExample:
    """One example exchange shown to the LLM before the conversation (a user/assistant chat turn)."""

    user: str
    assistant: str


# Few-shot examples in the warm prefix (design note 57): a 135M model copies their shape, so each answer
# is one short, correct English sentence, one of each kind it will be asked. With greedy decoding:
# keyword-correct 18-20 -> 23-25 of 31 questions, foreign replies 2-3 -> 0 of 39, the same answer every run.
DEFAULT_EXAMPLES: tuple[LlmExample, ...] = (
    LlmExample("What is the capital of Italy?", "Rome is the capital of Italy."),
    LlmExample("Why is the sky blue?", "Air scatters blue sunlight more than other colours."),
    LlmExample("What is a verb?", "A verb is an action word, like run."),
    LlmExample("How many legs does an insect have?", "An insect has six legs."),
    LlmExample("Will it rain tomorrow?", "Sorry, I can't check the weather offline."),
    LlmExample("Call my sister.", "Sorry, I can't make phone calls."),
    LlmExample("How are you doing today?", "I'm doing well, thank you."),
)
DEFAULT_STOP: tuple[str, ...] = ("\n", "User:", "Assistant:", "<|im_end|>")
EXAMPLE_MAX_CHARS = 400


@dataclass(frozen=True, slots=True)
class LlmConfig:
    """On-device llama.cpp (xllamacpp) or a remote OpenAI-compatible server."""

    backend: Literal["local", "openai"] = "local"
    model: str = "smollm2-135m"  # a manifest model name or a path to a .gguf
    threads: int = 1  # 1 is steady on 2 cores; leaves a core for TTS and listening
    batch_threads: int = 2  # prompt evaluation (TTFT), when nothing else runs; 0 = same as threads
    context_tokens: int = 2048
    max_tokens: int = 48
    temperature: float = 0.0  # 0 = greedy (top_k 1): the most likely answer, the same every time
    system_prompt: str = (
        "You are a helpful voice assistant in a home. Answer in one or two short sentences "
        "of plain spoken English, with no lists or markdown."
    )
    examples: tuple[LlmExample, ...] = DEFAULT_EXAMPLES  # chat turns after the system prompt (KV-cached)
    stop: tuple[str, ...] = DEFAULT_STOP  # generation ends at any of these (not spoken)
    max_sentences: int = 2  # the answer ends after this many spoken sentences (0 = no limit)
    history_turns: int = 3
    history_window_s: int = 300  # conversation memory is forgotten after this much quiet
    base_url: str = ""  # backend = "openai"
    remote_model: str = ""
    api_key_env: str = "EDGE_VOICE_LLM_API_KEY"
    timeout_ms: int = 3000
    # llama.cpp's threads yield the CPU to TTS/ASR when they compete (Linux thread nice): Piper's first
    # phrase then gets both cores while generation runs on (TTS first chunk 250 -> 145 ms in the turn bench).
    # Used only with service.adapt_to_load = false (the default is true, which runs the LLM at 0): a niced
    # LLM yields to every busy neighbour too (note 231)
    nice: int = 10
    prime: bool = True  # evaluate history + facts while the user speaks, so only the words are left after

    def __post_init__(self) -> None:
        _check_range("llm", "nice", self.nice, 0, 19)
        _check_range("llm", "threads", self.threads, 1, 8)
        _check_range("llm", "batch_threads", self.batch_threads, 0, 8)
        _check_range("llm", "context_tokens", self.context_tokens, 256, 32768)
        _check_range("llm", "max_tokens", self.max_tokens, 4, 1024)
        _check_range("llm", "temperature", self.temperature, 0.0, 2.0)
        _check_range("llm", "history_turns", self.history_turns, 0, 20)
        _check_range("llm", "history_window_s", self.history_window_s, 0, 86400)
        _check_range("llm", "timeout_ms", self.timeout_ms, 100, 120000)
        _check_range("llm", "max_sentences", self.max_sentences, 0, 20)
        for i, ex in enumerate(self.examples):
            for name, text in (("user", ex.user), ("assistant", ex.assistant)):
                _require(
                    f"llm.examples[{i}].{name}",
                    bool(text.strip()) and "\n" not in text and len(text) <= EXAMPLE_MAX_CHARS,
                    f"one line of 1 to {EXAMPLE_MAX_CHARS} characters (got {_brief(text)})",
                )
        for i, s in enumerate(self.stop):
            _require(f"llm.stop[{i}]", 0 < len(s) <= 32, f"a string of 1 to 32 characters (got {_brief(s)})")
        # OpenAI-compatible servers take at most 4
        _require("llm.stop", len(self.stop) <= 4, f"at most 4 strings (got {len(self.stop)})")
        _require(
            "llm.base_url",
            self.backend != "openai" or self.base_url.startswith(("http://", "https://")),
            'an http(s) URL when llm.backend = "openai"',
        )


@dataclass(frozen=True, slots=True)
class TtsConfig:
    """Piper."""

    voice: str = "piper-joe"  # a manifest model name or a path to a Piper .onnx (with .onnx.json beside it)
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w_scale: float = 0.8
    deterministic: bool = False  # noise 0: bit-identical output (tests)
    threads: int = 2  # with llm.nice, the first phrase is synthesised on both cores while the LLM yields
    first_chunk_min_words: int = 4  # the first TTS chunk may end at a clause boundary after this many words
    # ... or before a preposition or linking verb ("The capital of France | is Paris."): Piper starts on
    # a shorter first chunk when the first sentence has no comma (bench answer-levers, design note 282)
    first_chunk_phrase_breaks: bool = True
    backend: Literal["local", "wyoming"] = "local"  # wyoming: a remote server first, Piper as fallback
    uri: str = ""  # backend = "wyoming": tcp://host:port of e.g. wyoming-piper
    remote_voice: str = ""  # the server's voice name ("" = its default voice)
    # backend = "wyoming" only: false = Piper is never loaded (nor imported: no GPL code in the process);
    # no voice while the server is down (an engine.fallback event), no phrase cache
    local_fallback: bool = True
    timeout_ms: int = 3000  # connect, and each audio event of the reply, each within this
    # the most audio one reply (an answer, a say/announce) may speak; the rest is not synthesised. A
    # remote reply is also held to 0.5 s per character of its text (+ 2 s)
    max_reply_s: float = 30.0

    def __post_init__(self) -> None:
        _check_range("tts", "max_reply_s", self.max_reply_s, 1.0, 600.0)
        _check_range("tts", "length_scale", self.length_scale, 0.3, 3.0)
        _check_range("tts", "noise_scale", self.noise_scale, 0.0, 2.0)
        _check_range("tts", "noise_w_scale", self.noise_w_scale, 0.0, 2.0)
        _check_range("tts", "threads", self.threads, 1, 8)
        _check_range("tts", "first_chunk_min_words", self.first_chunk_min_words, 1, 50)
        _check_range("tts", "timeout_ms", self.timeout_ms, 100, 120000)
        _require(
            "tts.uri",
            self.backend != "wyoming" or tcp_host_port(self.uri) is not None,
            f'tcp://host:port when tts.backend = "wyoming" (got {_brief(self.uri)})',
        )
        _require(
            "tts.local_fallback",
            self.local_fallback or self.backend == "wyoming",
            'true unless tts.backend = "wyoming" (the local backend is Piper)',
        )


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    follow_up_window_ms: int = 5000  # after a reply, speech without the wake word starts a turn
    barge_in: bool = True  # wake word while speaking interrupts the reply
    chimes: bool = True  # a short tone when the microphone opens for a turn, and before an announce
    say_max_wait_ms: int = 20000  # a say/announce/timer waits this long at most for the user's turn to end
    # while the device speaks (a reply, a timer ringing), "stop" said alone ends it without the wake word:
    # a short utterance between silences is decoded by the ASR (bench stop: detection, false stops/hour)
    stop_word: bool = True
    timer_repeats: int = 3  # a finished timer rings: its phrase said this many times ("stop" ends it)

    def __post_init__(self) -> None:
        _check_range("conversation", "follow_up_window_ms", self.follow_up_window_ms, 0, 60000)
        _check_range("conversation", "say_max_wait_ms", self.say_max_wait_ms, 0, 300000)
        _check_range("conversation", "timer_repeats", self.timer_repeats, 1, 10)


MQTT_COMMAND_NAMES = ("listen", "unmute", "say", "announce", "cancel", "volume", "mute")
# safe defaults: a broker client may speak, stop or quieten a reply and mute, but never open the mic
DEFAULT_MQTT_COMMANDS = ("say", "announce", "cancel", "volume", "mute")
MAX_TOPIC_PART_BYTES = 1024  # MQTT allows 65535 bytes per topic; the prefix leaves room for the rest


def _topic_part(key: str, value: str, *, empty_ok: bool) -> None:
    """A prefix MQTT topics are built on: no wildcard, NUL, '$' start (broker topics) or edge '/'."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        size = -1
    _require(
        key,
        (empty_ok or bool(value))
        and 0 <= size <= MAX_TOPIC_PART_BYTES
        and not any(c in value for c in "#+\0")
        and not value.startswith(("$", "/"))
        and not value.endswith("/"),
        f"an MQTT topic prefix{'' if empty_ok else ', not empty'}, at most {MAX_TOPIC_PART_BYTES} bytes"
        " of UTF-8, without '#', '+', NUL, a leading '$' or '/' or a trailing '/'",
    )


@dataclass(frozen=True, slots=True)
class MqttConfig:
    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    prefix: str = ""  # "" = edge-voice/<device_id>
    client_id: str = ""  # "" = edge-voice-<device_id>-<random>: a guessable id can be taken over
    username: str = ""
    password_env: str = "EDGE_VOICE_MQTT_PASSWORD"  # the secret stays out of the file and the logs
    tls: bool = False
    ca_file: str = ""
    # a client certificate (PEM) and its unencrypted key, for a broker with require_certificate
    cert_file: str = ""
    key_file: str = ""
    keepalive_s: int = 30
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    discovery_debounce_ms: int = 2000  # a burst of Home Assistant births republishes discovery once
    hermes: bool = False
    buffer_max: int = 1000  # QoS1 events kept while disconnected; overflow drops the oldest and counts it
    max_payload_bytes: int = 4096
    # what a broker client may do: listen (open the mic), unmute, say, announce, cancel, volume, mute (on)
    allow_commands: tuple[str, ...] = DEFAULT_MQTT_COMMANDS
    commands_per_s: float = 5.0  # command rate over MQTT (token bucket); beyond it refused and counted
    command_burst: int = 20
    publish_transcripts: bool = True  # what was said, in transcript.final, intents and response.done
    retain_transcript: bool = False  # keep the last transcript retained on the broker (the HA sensor)
    intent_max_age_ms: int = 5000  # an intent buffered longer (broker away) is dropped, not acted on late

    def __post_init__(self) -> None:
        _check_range("mqtt", "port", self.port, 1, 65535)
        _check_range("mqtt", "keepalive_s", self.keepalive_s, 5, 3600)
        _check_range("mqtt", "buffer_max", self.buffer_max, 10, 1_000_000)
        _check_range("mqtt", "max_payload_bytes", self.max_payload_bytes, 64, 1_000_000)
        _check_range("mqtt", "discovery_debounce_ms", self.discovery_debounce_ms, 0, 60000)
        _check_range("mqtt", "commands_per_s", self.commands_per_s, 0.1, 1000)
        _check_range("mqtt", "command_burst", self.command_burst, 1, 10000)
        _check_range("mqtt", "intent_max_age_ms", self.intent_max_age_ms, 100, 3_600_000)
        _topic_part("mqtt.prefix", self.prefix, empty_ok=True)
        _topic_part("mqtt.discovery_prefix", self.discovery_prefix, empty_ok=False)
        _require(
            "mqtt.client_id",
            len(self.client_id.encode("utf-8", "replace")) <= 128 and "\0" not in self.client_id,
            "at most 128 bytes without NUL",
        )
        _require(
            "mqtt.cert_file", bool(self.cert_file) == bool(self.key_file), "set together with mqtt.key_file"
        )
        _require("mqtt.cert_file", not self.cert_file or self.tls, "used only with mqtt.tls = true")
        unknown = [c for c in self.allow_commands if c not in MQTT_COMMAND_NAMES]
        _require(
            "mqtt.allow_commands",
            not unknown,
            f"a list of {', '.join(MQTT_COMMAND_NAMES)} (unknown: {', '.join(map(repr, unknown))})",
        )


@dataclass(frozen=True, slots=True)
class GpioConfig:
    enabled: bool = False
    board: str = ""  # edge_voice/data/boards/<board>.toml: pi4, pi5, jetson-orin-nano, respeaker-2mic
    pin_factory: str = "auto"  # auto | mock | lgpio | rpigpio | jetson
    led_pins: tuple[int, ...] = ()  # one pin = single (PWM) LED, three = red/green/blue
    pwm: bool = True
    button_pin: int = -1  # -1 = no button
    hold_ms: int = 1500  # holding the button this long toggles mute
    mute_switch_pin: int = -1  # a hardware mute switch (to ground = muted); -1 = none

    def __post_init__(self) -> None:
        _require(
            "gpio.pin_factory",
            self.pin_factory in ("auto", "mock", "lgpio", "rpigpio", "pigpio", "jetson"),
            "one of auto, mock, lgpio, rpigpio, pigpio, jetson",
        )
        _require("gpio.led_pins", len(self.led_pins) in (0, 1, 3), "a list of 0, 1 or 3 pin numbers")
        _check_range("gpio", "hold_ms", self.hold_ms, 200, 10000)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    # send WATCHDOG=1 from the audio path when systemd asks for it; false: none, and systemd's watchdog is
    # switched off for the run (WATCHDOG_USEC=0), so WatchdogSec= in the unit does not kill the daemon
    watchdog: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    stage_timeout_ms: int = 20000  # an LLM/TTS/playback job busy this long ends its turn with an error
    hung_exit_ms: int = 90000  # an engine thread stuck this long: exit 70 so systemd restarts us
    # threads follow the cores other processes leave free (start-up; ASR per decode; a neighbour at a
    # higher nice counts by the share of a core it would keep), OpenMP workers sleep instead of spinning,
    # the LLM is not niced; false = fixed thread counts and llm.nice (bench load, design notes 231, 270)
    adapt_to_load: bool = True

    def __post_init__(self) -> None:
        _check_range("service", "stage_timeout_ms", self.stage_timeout_ms, 1000, 600000)
        _check_range("service", "hung_exit_ms", self.hung_exit_ms, 2000, 3600000)
        _require(
            "service.hung_exit_ms",
            self.hung_exit_ms > self.stage_timeout_ms,
            f"greater than service.stage_timeout_ms ({self.stage_timeout_ms})",
        )


@dataclass(frozen=True, slots=True)
class Config:
    device_id: str = "edge-voice"
    models_dir: str = ""  # cache for derived models; "" = $XDG_CACHE_HOME/edge-voice/models
    audio: AudioConfig = field(default_factory=AudioConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    intents: IntentsConfig = field(default_factory=IntentsConfig)
    skills: SkillsConfig = field(default_factory=SkillsConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    conversation: ConversationConfig = field(default_factory=ConversationConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    home_assistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)

    def __post_init__(self) -> None:
        ok = bool(self.device_id) and all(c.isalnum() or c in "-_" for c in self.device_id)
        _require("device_id", ok, "letters, digits, '-' or '_' (it is used in MQTT topics)")
        if self.intents.backend == "home_assistant":
            _require("intents.backend", self.intents.enabled, '"local" when intents.enabled = false')
        if self.intents.backend == "home_assistant" and self.intents.language != "en":
            # HA would parse the transcript in another language than the fast path that chose to ask it
            lang = self.intents.language
            _require(
                "home_assistant.language",
                self.home_assistant.language == lang,
                f'"{lang}" (intents.language)',
            )
        if self.intents.backend == "home_assistant" or self.home_assistant.learn_devices:
            # HA's request must end (and the fast path answer) before the stage deadline fails the turn
            timeout, stage = self.home_assistant.timeout_ms, self.service.stage_timeout_ms
            below = f"below service.stage_timeout_ms ({stage})"
            _require("home_assistant.timeout_ms", timeout < stage, below)

    @property
    def topic_prefix(self) -> str:
        return self.mqtt.prefix or f"edge-voice/{self.device_id}"

    @property
    def models_path(self) -> Path:
        if self.models_dir:
            return Path(self.models_dir).expanduser()
        from edge_voice.cache import cache_dir

        return cache_dir("models")


def still_english(cfg: Config) -> tuple[str, ...]:
    """What stays English when ``intents.language`` is not "en" (for the start-up warning and doctor):
    the fast path speaks HA's sentences in that language, the rest is as configured. () for English."""
    if cfg.intents.language == "en":
        return ()
    lang = cfg.intents.language
    out: list[str] = []
    if ".en" in cfg.asr.model or cfg.asr.language != lang.split("-")[0]:
        out.append(f"speech recognition (asr.model = {cfg.asr.model}, asr.language = {cfg.asr.language})")
    if cfg.tts.backend == "local" and not cfg.tts.voice.endswith(".onnx"):
        out.append(f"the voice (tts.voice = {cfg.tts.voice}: the shipped Piper voices are English)")
    if cfg.llm.system_prompt == LlmConfig().system_prompt and cfg.llm.examples == DEFAULT_EXAMPLES:
        out.append("the LLM's prompt and examples (llm.system_prompt, llm.examples)")
    out.append("edge-voice's own phrases: errors, a timer's 'done', HA-less fallbacks")
    out.append("the skills (units, holidays, …: not asked in another language)")
    return tuple(out)


# --------------------------------------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 4, 4


def _brief(value: Any) -> str:
    """A bounded one-line repr for messages (a 5000-character value must not fill the log)."""
    try:
        return _REPR.repr(value)
    except ValueError:  # an integer beyond Python's 4300-digit str() limit
        return f"an {type(value).__name__} too large to print"


def _dotted(prefix: str, name: str) -> str:
    """``prefix.name``; a name that is empty, unprintable or has '.', '"', '[' is quoted (TOML style), so
    the dotted key is one readable line whatever a file contains."""
    plain = name.isprintable() and name != "" and not any(c in name for c in '."[]')
    part = name if plain else json.dumps(name)
    return f"{prefix}.{part}" if prefix else part


def _convert(key: str, tp: Any, value: Any) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert TOML shapes (lists → tuples)."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"must be a table (got {type(value).__name__})")
        return _build(tp, value, key)
    if origin is Literal:
        allowed = get_args(tp)
        _require(
            key, value in allowed, "one of " + ", ".join(repr(a) for a in allowed) + f" (got {_brief(value)})"
        )
        return value
    if origin is tuple:
        item_tp = get_args(tp)[0]
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"must be a list (got {type(value).__name__})")
        return tuple(_convert(f"{key}[{i}]", item_tp, v) for i, v in enumerate(value))
    if origin in (Mapping, dict) or tp is Mapping:
        val_tp = get_args(tp)[1]
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"must be a table (got {type(value).__name__})")
        return types.MappingProxyType(
            {str(k): _convert(_dotted(key, str(k)), val_tp, v) for k, v in value.items()}
        )
    if origin in (types.UnionType, typing.Union):
        for arg in get_args(tp):
            try:
                return _convert(key, arg, value)
            except ConfigError:
                continue
        raise ConfigError(key, f"must be {_type_name(tp)} (got {_brief(value)})")
    if tp is bool:
        _require(key, isinstance(value, bool), f"true or false (got {_brief(value)})")
        return value
    if tp is int:
        _require(
            key, isinstance(value, int) and not isinstance(value, bool), f"an integer (got {_brief(value)})"
        )
        return value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _require(key, ok, f"a number (got {_brief(value)})")
        try:
            return float(value)
        except OverflowError:  # TOML integers are unbounded: 1 followed by 400 zeros
            raise ConfigError(key, "a number (got an integer too large for a float)") from None
    if tp is str:
        _require(key, isinstance(value, str), f"a string (got {_brief(value)})")
        return value
    raise ConfigError(key, f"unsupported type {_type_name(tp)}")  # pragma: no cover - schema bug


def _build(cls: type[Any], table: Mapping[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        key = _dotted(prefix, name)
        if name not in fields:
            raise ConfigError(key, "unknown key; allowed: " + ", ".join(sorted(fields)))
        kwargs[name] = _convert(key, hints[name], value)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field (e.g. DeviceEntry.name) is missing
        raise ConfigError(prefix or "<root>", str(exc)) from None


def _parse_env_value(raw: str) -> Any:
    if "\n" in raw or "\r" in raw:  # "5\nx = 1" would parse as 5 and silently drop the rest
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):  # ValueError: > 4300-digit integer
        return raw


def _env_paths(environ: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """(variable name, lower-case key path) of every ``EDGE_VOICE_*`` config variable."""
    # read elsewhere: the secrets, the config file's path, the model manifest's path (models.registry)
    not_keys = {
        "EDGE_VOICE_MQTT_PASSWORD",
        "EDGE_VOICE_LLM_API_KEY",
        "EDGE_VOICE_CONFIG",
        "EDGE_VOICE_MANIFEST",
    }
    out = []
    for name in environ:
        if not name.startswith(ENV_PREFIX) or name in not_keys:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if not all(path):
            raise ConfigError(
                name, "not a config key; use EDGE_VOICE_<SECTION>__<KEY>, e.g. EDGE_VOICE_MQTT__HOST"
            )
        out.append((name, path))
    return out


def _wants_text(path: list[str]) -> bool:
    """Whether the config field at ``path`` holds a string (``str`` or a ``Literal`` of strings)."""
    tp: Any = Config
    for part in path:
        if not (dataclasses.is_dataclass(tp) and isinstance(tp, type)):
            return False
        tp = typing.get_type_hints(tp).get(part)
    args = get_args(tp) if get_origin(tp) is Literal else ()
    return tp is str or (bool(args) and all(isinstance(a, str) for a in args))


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``EDGE_VOICE_A__B=v`` variables into a nested table ``{"a": {"b": v}}``.

    A string field takes the text as it is (``EDGE_VOICE_DEVICE_ID=1234`` is the id "1234", not a number);
    a quoted TOML string (``'"1234"'``) works too."""
    tree: dict[str, Any] = {}
    for name, path in _env_paths(environ):
        raw = environ[name]
        value = _parse_env_value(raw)
        if _wants_text(path) and not isinstance(value, str):
            value = raw
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(".".join(path), f"set both as a value and a table by {name}")
        if path[-1] in node:  # EDGE_VOICE_MQTT=… and EDGE_VOICE_MQTT__PORT=…, or two spellings of one key
            raise ConfigError(".".join(path), f"set by more than one variable (one is {name})")
        node[path[-1]] = value
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def from_mapping(table: Mapping[str, Any]) -> Config:
    result: Config = _build(Config, table)
    return result


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load the config file (missing default file = defaults) and apply environment overrides."""
    environ = os.environ if environ is None else environ
    table: dict[str, Any] = {}
    explicit = path is not None or "EDGE_VOICE_CONFIG" in environ
    file = path or Path(environ.get("EDGE_VOICE_CONFIG", str(DEFAULT_CONFIG_PATH)))
    if file.exists():
        table = _read_toml(file)
    elif explicit:
        raise ConfigError(str(file), "config file not found")
    table = _merge(table, env_overrides(environ))
    try:
        return _with_board(table, environ)
    except ConfigError as exc:  # name the variable when the bad value came from the environment
        for name, parts in _env_paths(environ):
            dotted = functools.reduce(_dotted, parts, "")
            # the variable's own key, a key inside the table it set, or the unknown section it names
            if (
                exc.key == dotted
                or exc.key.startswith((f"{dotted}.", f"{dotted}["))
                or (dotted.startswith(f"{exc.key}.") and exc.message.startswith("unknown key"))
            ):
                raise ConfigError(exc.key, f"{exc.message} (set by ${name})") from None
        raise


def _with_board(table: dict[str, Any], environ: Mapping[str, str]) -> Config:
    """``from_mapping``, after merging the board profile (edge_voice/data/boards/<name>.toml) under the
    user's keys."""
    board = table.get("gpio", {}).get("board") if isinstance(table.get("gpio"), Mapping) else None
    if board and isinstance(board, str):
        from edge_voice.core.boards import BoardError, merge_board_profile

        # checked first: the lookup would put the whole name in its message, or fail on a NUL
        _require(
            "gpio.board", len(board) <= 255 and "\0" not in board, f"a profile name (got {_brief(board)})"
        )
        try:
            table = merge_board_profile(table, environ)
        except BoardError as exc:  # no such profile, or not valid TOML
            raise ConfigError("gpio.board", str(exc).removeprefix("gpio.board: ")) from None
        except (OSError, ValueError, RecursionError) as exc:  # unreadable, not UTF-8
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError("gpio.board", f"cannot read profile {_brief(board)}: {why}") from None
    return from_mapping(table)


def _read_toml(file: Path) -> dict[str, Any]:
    """Parse a TOML file; every failure is a ConfigError naming the file (and the line when known)."""
    try:
        raw = file.read_bytes()
    except OSError as exc:  # a directory, no permission
        raise ConfigError(str(file), f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(str(file), f"not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line N, column M)"
        raise ConfigError(str(file), f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nested array / inline table
        raise ConfigError(str(file), f"not valid TOML: nested too deeply{_near_line(text, '[{')}") from None
    except ValueError:  # an integer literal beyond Python's 4300-digit limit
        raise ConfigError(
            str(file), f"not valid TOML: a number has too many digits{_near_line(text, '')}"
        ) from None


def _near_line(text: str, openers: str) -> str:
    """Where nesting first gets deep (openers given) or a 4300-digit number starts — for the message."""
    depth = digits = 0
    for line_no, line in enumerate(text.splitlines(), 1):
        for c in line:
            if openers:
                depth += (c in openers) - (c in "]}")
                if depth > 100:
                    return f" (near line {line_no})"
            else:
                digits = digits + 1 if c.isdigit() or (c == "_" and digits) else 0
                if digits > 4300:
                    return f" (at line {line_no})"
    return ""


def replace(cfg: Config, **sections: Any) -> Config:
    """A copy with whole sections or top-level values replaced (tests, CLI flags)."""
    return dataclasses.replace(cfg, **sections)
