"""``edge-voice run``: the daemon with its real inputs and outputs (microphone/speaker or WAV files,
MQTT, GPIO, systemd notify)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_voice.audio.echo import Room, load_room
from edge_voice.audio.sinks import AudioSink, SpeakerSink, WavSink
from edge_voice.audio.sources import AudioSource, InputClock, MicSource, WavSource, read_input
from edge_voice.core.config import Config, load, still_english
from edge_voice.core.messages import Pcm
from edge_voice.core.publisher import EventSink
from edge_voice.integrations.sinks import JsonlSink, MemorySink
from edge_voice.runtime import echo_path
from edge_voice.runtime.daemon import Daemon, Engines, StartupError, load_engines

log = logging.getLogger(__name__)


def _progress(msg: str) -> None:
    print(f"edge-voice: {msg}", file=sys.stderr, flush=True)


def make_io(
    cfg: Config,
    engines: Engines,
    clock: InputClock,
    input_audio: Pcm | None,
    output_wav: Path | None,
    fast: bool,
) -> tuple[AudioSource, AudioSink, Callable[[], AudioSource] | None]:
    rate = cfg.audio.output_rate_hz or engines.tts.sample_rate
    source: AudioSource
    reopen: Callable[[], AudioSource] | None = None
    if input_audio is not None:
        source = WavSource(input_audio, pace="adaptive" if fast else "realtime", clock=clock)
    else:
        n = cfg.audio.frame_samples
        source = MicSource(cfg.audio.input_device, n)
        reopen = lambda: MicSource(cfg.audio.input_device, n)  # noqa: E731
    sink: AudioSink = (
        WavSink(output_wav, clock, rate)
        if output_wav is not None
        else SpeakerSink(cfg.audio.output_device, rate, cfg.audio.output_chunk_ms, clock)
    )
    return source, sink, reopen


def make_echo(cfg: Config, source: AudioSource, sink: AudioSink, room: Room | None) -> echo_path.EchoPath:
    """The echo path around ``source``/``sink``: simulated room (``--room``), canceller, guard."""

    def guard_wake() -> Any:
        from edge_voice.listen.wake import OpenWakeWordDetector

        return OpenWakeWordDetector(cfg.wake)

    try:
        return echo_path.build(cfg, source, sink, room, guard_wake)
    except echo_path.EchoSetupError as exc:
        raise StartupError(str(exc)) from None


def run_daemon(cfg: Config, args: argparse.Namespace) -> int:
    from edge_voice.integrations.sd_notify import Notifier

    notifier = Notifier()
    interval = notifier.watchdog_interval_s()
    if interval is not None and not cfg.service.watchdog:
        # no keep-alives, so systemd must not expect any: before the models load, as the unit's
        # WatchdogSec= may already be counting
        notifier.disable_watchdog()
        log.info("service.watchdog = false: systemd's watchdog is switched off for this run")
        interval = None
    preflight_gpio(cfg)  # a GPIO mistake is reported now, not after a minute of model loading
    notifier.status("loading models")
    # read (and so check) the input before seconds of model loading; read once, played from memory
    audio = read_input(args.input) if args.input is not None else None
    room_file = getattr(args, "room", None)
    if room_file is not None and audio is None:
        raise StartupError("--room simulates a room for a WAV input: use it with --input FILE.wav")
    room = load_room(room_file) if room_file is not None else None  # a bad file: exit 78 before loading

    if cfg.mqtt.enabled and cfg.mqtt.tls and not getattr(args, "no_mqtt", False):
        from edge_voice.integrations.mqtt import tls_context

        tls_context(cfg.mqtt)  # unusable certificate files: exit 78 now, not after the models load

    if cfg.intents.backend == "home_assistant" or cfg.home_assistant.learn_devices:
        from edge_voice.engines.remote.home_assistant import check_token

        check_token(cfg.home_assistant.token_env)  # a malformed token: exit 78 naming the variable, not it
    from edge_voice.integrations.ha_devices import with_learned_devices

    cfg = with_learned_devices(cfg)  # before the engines: the matcher and whisper's prompt name them
    if english := still_english(cfg):
        log.warning(
            "intents.language = %s: the fast path understands and answers in it (Home Assistant's "
            "sentences); still English: %s",
            cfg.intents.language,
            "; ".join(english),
        )
    engines = load_engines(cfg, _progress)
    clock = InputClock()
    source, sink, reopen = make_io(cfg, engines, clock, audio, args.output, args.fast)
    echo = make_echo(cfg, source, sink, room)
    source, sink = echo.source, echo.sink
    sinks: list[EventSink] = []
    jsonl = JsonlSink(args.events) if args.events else None
    if jsonl is not None:
        sinks.append(jsonl)
    memory = MemorySink(only=("response.done",))  # for the closing summary; bounded
    sinks.append(memory)

    last_kick = [0.0]

    def on_frame() -> None:  # from the listen thread: the audio path is alive
        now = time.monotonic()
        if interval and now - last_kick[0] >= interval:
            last_kick[0] = now
            notifier.watchdog()

    def on_ready() -> None:  # every model loaded and warmed, the phrase cache filled
        notifier.ready()
        notifier.status("listening")
        _progress(f"ready (models loaded in {sum(engines.load_ms.values()):.0f} ms: {engines.load_ms})")

    extras: list[Callable[[], None]] = []
    try:
        daemon = Daemon(
            cfg,
            engines,
            source,
            sink,
            sinks,
            clock,
            reopen_source=reopen,
            on_frame=on_frame,
            on_ready=on_ready,
            # a reload keeps the learned devices (from the cache: no network on the orchestrator's thread)
            load_config=lambda: with_learned_devices(load(getattr(args, "config", None)), network=False),
            echo=echo,
        )
        extras = attach_home(cfg, daemon, no_mqtt=getattr(args, "no_mqtt", False))
        daemon.run()
    finally:
        notifier.stopping()
        for stop in extras:
            stop()
        wav = getattr(sink, "inner", sink)  # the echo path's ReferencedSink wraps the WavSink
        if isinstance(wav, WavSink):
            n_in = getattr(source, "duration_samples", 0)
            wav.save(n_in)
            _progress(f"reply audio written to {wav.path}")
        sink.close()
        if jsonl is not None:
            jsonl.close()
    for ev in memory.of("response.done"):
        d = ev.data
        _progress(f"turn {ev.turn_id}: {d.get('transcript')!r} → {d.get('reply')!r} {d.get('latency')}")
    return daemon.orch.exit_code


def preflight_gpio(cfg: Config) -> None:
    """Every GPIO problem (no library, a pin that is not there or is taken), before any model loads.
    Raises ``StartupError`` naming each, with the fix."""
    if not cfg.gpio.enabled:
        return
    from edge_voice.hw.pins import check_gpio, gpio_pins

    bad = [msg for _, ok, msg in check_gpio(cfg.gpio.pin_factory, gpio_pins(cfg.gpio)) if not ok]
    if bad:
        raise StartupError("gpio: " + "; ".join(bad))


def attach_home(cfg: Config, daemon: Daemon, no_mqtt: bool = False) -> list[Callable[[], None]]:
    """MQTT bridge and GPIO, if configured. Returns their stop functions. Raises ``StartupError`` (having
    stopped whatever it started) if either cannot be set up."""
    stops: list[Callable[[], None]] = []
    part = "mqtt"
    try:
        if cfg.mqtt.enabled and not no_mqtt:
            from edge_voice.integrations.home_sinks import MqttEventSink

            bridge_sink = MqttEventSink(cfg, daemon)
            daemon.orch.out.sinks.append(bridge_sink)
            stops.append(bridge_sink.stop)
        part = "gpio"
        if cfg.gpio.enabled:
            from edge_voice.integrations.home_sinks import GpioSink

            gpio = GpioSink(cfg, daemon)
            daemon.orch.out.sinks.append(gpio)
            stops.append(gpio.stop)
    except Exception as exc:  # unusable pins, unreadable TLS files: exit 78, not a restart loop
        for stop in stops:
            stop()
        raise StartupError(f"{part}: {exc}") from exc
    return stops
