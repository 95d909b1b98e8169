"""``edge-voice run``: the daemon with its real inputs and outputs (microphone/speaker or WAV files,
MQTT, GPIO, systemd notify)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from edge_voice.audio.sinks import AudioSink, SpeakerSink, WavSink
from edge_voice.audio.sources import AudioSource, InputClock, MicSource, WavSource, read_input
from edge_voice.core.config import Config, load
from edge_voice.core.messages import Pcm
from edge_voice.core.publisher import EventSink
from edge_voice.integrations.sinks import JsonlSink, MemorySink
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
    engines = load_engines(cfg, _progress)
    clock = InputClock()
    source, sink, reopen = make_io(cfg, engines, clock, audio, args.output, args.fast)
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
            load_config=lambda: load(getattr(args, "config", None)),
        )
        extras = attach_home(cfg, daemon, no_mqtt=getattr(args, "no_mqtt", False))
        daemon.run()
    finally:
        notifier.stopping()
        for stop in extras:
            stop()
        if isinstance(sink, WavSink):
            n_in = getattr(source, "duration_samples", 0)
            sink.save(n_in)
            _progress(f"reply audio written to {sink.path}")
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
