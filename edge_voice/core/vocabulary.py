"""The names the outside world sees, each defined once: event types, states, stages, error codes and
latency keys. Events, MQTT topics, LEDs, logs, benchmarks and the demo import them from here.

``StrEnum`` members are their strings (``EventType.ERROR == "error"``, JSON-encoded as ``"error"``), so
subscribers and stored results keep the same wire names.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """Outward events (MQTT ``…/event/<type>``, JSON lines), in the order a turn produces them."""

    WAKE_DETECTED = "wake.detected"
    SPEECH_STARTED = "input_audio.speech_started"
    SPEECH_STOPPED = "input_audio.speech_stopped"
    TRANSCRIPT_FINAL = "transcript.final"
    INTENT_RECOGNIZED = "intent.recognized"
    RESPONSE_STARTED = "response.started"
    TEXT_DELTA = "response.text.delta"
    AUDIO_STARTED = "response.audio.started"
    RESPONSE_DONE = "response.done"
    TURN_CANCELLED = "turn.cancelled"
    ERROR = "error"
    # not tied to a turn
    VOLUME_CHANGED = "volume.changed"
    MUTE_CHANGED = "mute.changed"
    ENGINE_FALLBACK = "engine.fallback"
    TIMER_FINISHED = "timer.finished"
    CONFIG_RELOADED = "config.reloaded"
    AUDIO_RECOVERED = "audio.recovered"
    ECHO_PATH = "echo.path"  # echo cancellation degraded (missing/misaligned reference) or restored


class State(StrEnum):
    """The device state (retained on MQTT, shown by the LEDs)."""

    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    MUTED = "muted"
    ERROR = "error"


class Stage(StrEnum):
    """Where something happened or failed (``error`` events, deadlines, fallbacks)."""

    WAKE = "wake"
    VAD = "vad"
    LISTEN = "listen"
    ASR = "asr"
    INTENT = "intent"
    LLM = "llm"
    TTS = "tts"
    PLAYBACK = "playback"
    AUDIO = "audio"
    MQTT = "mqtt"
    COMMAND = "command"
    CONFIG = "config"
    ORCHESTRATOR = "orchestrator"


class ErrorCode(StrEnum):
    """``error`` events' ``code``."""

    INTERNAL = "internal"
    TIMEOUT = "timeout"  # a stage missed its deadline; the turn ends
    HUNG = "hung"  # an engine stuck past service.hung_exit_ms; the daemon exits 70
    OVERLOADED = "overloaded"  # a worker queue was full
    ASR_FAILED = "asr_failed"
    LLM_FAILED = "llm_failed"
    TTS_FAILED = "tts_failed"
    SINK_FAILED = "sink_failed"  # the speaker write failed
    SOURCE_FAILED = "source_failed"  # the microphone failed
    LISTENER_FAILED = "listener_failed"  # wake word / VAD raised on a frame
    LISTEN_TIMEOUT = "listen_timeout"  # a turn listened far longer than any utterance
    BAD_COMMAND = "bad_command"  # an MQTT payload failed validation
    MUTED = "muted"  # a command ignored while muted
    REFUSED = "refused"  # an MQTT command not in mqtt.allow_commands, or an unmute of a physical mute
    RATE_LIMITED = "rate_limited"  # MQTT commands beyond mqtt.commands_per_s: refused and counted
    EVENTS_DROPPED = "events_dropped"  # MQTT events lost (buffer full) or intents expired: counted
    RELOAD_FAILED = "reload_failed"  # SIGHUP with an invalid config: the old one is kept


class Latency(StrEnum):
    """The latency breakdown in ``response.done`` (ms); benchmarks and the demo use the same keys."""

    ENDPOINT = "endpoint_ms"  # t0 → endpoint confirmed or early commit
    DECODE_START = "decode_start_ms"  # t0 → the committed attempt's audio handed to the ASR thread
    ASR_WAIT = "asr_wait_ms"  # handed → transcript back, minus the decode: queued behind another decode
    ASR = "asr_ms"  # decode time
    INTENT = "intent_ms"  # transcript → intent
    LLM_TTFT = "llm_ttft_ms"  # request → first token
    FIRST_SENTENCE = "first_sentence_ms"  # reply start → first sentence handed to TTS
    TTS_FIRST_CHUNK = "tts_first_chunk_ms"  # first sentence → first audio chunk
    VOICE_TO_VOICE = "voice_to_voice_ms"  # t0 → first reply sample written to the sink
    WAKE_TO_ACK = "wake_to_ack_ms"  # wake word → state listening
