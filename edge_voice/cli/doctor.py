"""`edge-voice doctor`: one verdict per line on what the daemon needs on this machine.

``ok`` is True (fine), False (will not work: fix it) or None (not used / worth a look). Every check
catches its own failure, so the report is always complete.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from edge_voice.core.config import Config, ConfigError, still_english
from edge_voice.models import registry

log = logging.getLogger(__name__)

RUNTIME_PACKAGES = (
    "numpy",
    "ai-edge-litert",
    "onnxruntime",
    "pywhispercpp",
    "xllamacpp",
    "piper-tts",
    "paho-mqtt",
    "gpiozero",
    "soxr",
    "soundfile",
    "pywebrtc-audio",
)
OPTIONAL_PACKAGES = ("pyaudio", "lgpio", "Jetson.GPIO")
MIN_RAM_MB = 600  # whisper tiny (~150 MB) + SmolLM2 (~300 MB) + Piper (~90 MB) + Python
GOOD_RAM_MB = 1000
BROKER_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class DoctorLine:
    name: str
    ok: bool | None
    detail: str


def run_doctor(cfg: Config, *, verify_models: bool = True) -> list[DoctorLine]:
    checks: list[tuple[str, Callable[[Config], list[DoctorLine]]]] = [
        ("python", _python),
        ("packages", _packages),
        ("system", _system),
        ("audio", _audio),
        ("echo", _echo),
        ("gpio", _gpio),
        ("mqtt", _mqtt),
        ("remote", _remote),
        ("language", _language),
        ("service", _service),
    ]
    if verify_models:
        checks.insert(3, ("models", _models))
    out: list[DoctorLine] = []
    for name, check in checks:
        try:
            out.extend(check(cfg))
        except Exception as exc:  # a broken check is itself a finding, never a crash
            log.debug("doctor check %s failed", name, exc_info=True)
            out.append(DoctorLine(name, False, f"check failed: {type(exc).__name__}: {exc}"))
    return out


def format_lines(lines: list[DoctorLine]) -> str:
    mark = {True: "ok  ", False: "FAIL", None: "--  "}
    width = max((len(line.name) for line in lines), default=0)
    return "\n".join(f"[{mark[line.ok]}] {line.name:<{width}}  {line.detail}" for line in lines)


def exit_code(lines: list[DoctorLine]) -> int:
    return 1 if any(line.ok is False for line in lines) else 0


# ------------------------------------------------------------------------------------------------ checks


def _python(_cfg: Config) -> list[DoctorLine]:
    ok = sys.version_info >= (3, 11)
    return [
        DoctorLine(
            "python",
            ok,
            f"{platform.python_version()} on {platform.machine()} "
            f"({platform.system()} {platform.release()}), {sys.executable}",
        )
    ]


def _packages(_cfg: Config) -> list[DoctorLine]:
    found, missing, optional = [], [], []
    for dist in RUNTIME_PACKAGES:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            missing.append(dist)
    for dist in OPTIONAL_PACKAGES:
        try:
            optional.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            optional.append(f"{dist} absent")
    lines = [
        DoctorLine(
            "packages",
            not missing,
            ", ".join(found) + (f"; MISSING: {', '.join(missing)} (run `make setup`)" if missing else ""),
        )
    ]
    lines.append(DoctorLine("optional packages", None, ", ".join(optional)))
    return lines


def _meminfo() -> dict[str, int]:
    out = {}
    for row in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = row.partition(":")
        out[key] = int(rest.split()[0])  # kB
    return out


def _system(_cfg: Config) -> list[DoctorLine]:
    cpus = os.cpu_count() or 0
    lines = [
        DoctorLine("cpu", cpus >= 2 or None, f"{cpus} cores" + ("" if cpus >= 2 else " (2+ recommended)"))
    ]
    mem = _meminfo()
    total, avail = mem.get("MemTotal", 0) // 1024, mem.get("MemAvailable", 0) // 1024
    ram_ok = True if avail >= GOOD_RAM_MB else (None if avail >= MIN_RAM_MB else False)
    lines.append(
        DoctorLine("ram", ram_ok, f"{avail} MB available of {total} MB (models need ~{MIN_RAM_MB} MB)")
    )
    load1, load5, _ = os.getloadavg()
    lines.append(
        DoctorLine(
            "load",
            True if load1 < cpus else None,
            f"{load1:.2f} (1 min), {load5:.2f} (5 min) on {cpus} cores",
        )
    )
    return lines


def custom_model_paths(cfg: Config) -> list[tuple[str, str]]:
    """``(config key, path)`` of every model the config names by path (not a manifest entry): the
    user's to pin, so ``doctor`` and ``models verify`` print their sha256."""

    def is_path(v: str) -> bool:
        return "/" in v or v.endswith((".tflite", ".onnx", ".gguf", ".bin"))

    out = [(f"wake.words[{i}]", w) for i, w in enumerate(cfg.wake.words) if is_path(w)]
    out += [(f"wake.custom_models[{i}]", p) for i, p in enumerate(cfg.wake.custom_models)]
    for key, value in (
        ("asr.model", cfg.asr.model),
        ("llm.model", cfg.llm.model),
        ("tts.voice", cfg.tts.voice),
    ):
        if is_path(value):
            out.append((key, value))
    if is_path(cfg.tts.voice):
        out.append(("tts.voice config", f"{cfg.tts.voice}.json"))
    return out


def _models(cfg: Config) -> list[DoctorLine]:
    results = registry.verify_all(models_dir=cfg.models_path)
    if not results:
        return [DoctorLine("models", False, "the manifest lists no models")]
    lines = [
        DoctorLine(f"model {r.name}", None, r.message)  # optional, not installed: nothing is wrong
        if r.skipped
        else DoctorLine(f"model {r.name}", r.ok, r.path if r.ok else r.message)
        for r in results
    ]
    for r in registry.custom_results(custom_model_paths(cfg)):
        lines.append(DoctorLine(f"model {r.name}", r.ok, f"{r.path} {r.message}" if r.ok else r.message))
    return lines


def _remote(cfg: Config) -> list[DoctorLine]:
    """Credentials that would travel in clear text (llm.base_url over http:// to another host)."""
    if cfg.llm.backend != "openai":
        return []
    from edge_voice.engines.remote.openai import OpenAiGenerator

    gen = OpenAiGenerator(cfg.llm)  # builds no connection
    if gen.credentials_in_clear():
        return [
            DoctorLine("llm remote", False, f"credentials sent over plain http:// to {gen.url}; use https://")
        ]
    return [DoctorLine("llm remote", True, gen.url)]


def _language(cfg: Config) -> list[DoctorLine]:
    english = still_english(cfg)
    if not english:
        return [DoctorLine("language", True, "en: the fast path's rules, replies and models are English")]
    lang = cfg.intents.language
    said = f"{lang}: Home Assistant's sentences and replies on the fast path; still English: "
    return [DoctorLine("language", None, said + "; ".join(english))]


def _audio(cfg: Config) -> list[DoctorLine]:
    try:
        import pyaudio
    except ImportError:
        cards = Path("/proc/asound/cards")
        text = cards.read_text().strip() if cards.exists() else ""
        detail = "pyaudio is not installed: microphone/speaker mode unavailable (WAV files still work)"
        detail += (
            f"; ALSA cards: {' | '.join(text.splitlines()[::2])}"
            if text and "no soundcards" not in text
            else "; no ALSA sound cards found"
        )
        return [DoctorLine("audio", None, detail)]
    pa = pyaudio.PyAudio()
    try:
        devices = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
    finally:
        pa.terminate()
    inputs = [d for d in devices if int(d["maxInputChannels"]) > 0]
    outputs = [d for d in devices if int(d["maxOutputChannels"]) > 0]
    lines = [
        _device_line("audio input", inputs, cfg.audio.input_device, "microphone"),
        _device_line("audio output", outputs, cfg.audio.output_device, "speaker"),
    ]
    return lines


SERVER_AEC_PROBES = (
    (("pactl", "list", "modules", "short"), "module-echo-cancel", "PulseAudio module-echo-cancel"),
    (("pw-cli", "ls", "Module"), "libpipewire-module-echo-cancel", "PipeWire libpipewire-module-echo-cancel"),
)


def system_echo_cancel() -> list[str]:
    """The sound server's echo-cancel modules that are loaded (PulseAudio, PipeWire), by asking it."""
    import shutil
    import subprocess

    found = []
    for cmd, needle, what in SERVER_AEC_PROBES:
        if shutil.which(cmd[0]) is None:
            continue
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=3, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if needle in out[:200_000]:
            found.append(what)
    return found


def _echo(cfg: Config) -> list[DoctorLine]:
    """Which echo path this device uses: in-process cancellation, the sound server's, or none."""
    from edge_voice.runtime import echo_path

    server = system_echo_cancel()
    board = ""
    if cfg.gpio.board:
        from edge_voice.core.boards import BoardError, board_notes

        try:
            board = str(board_notes(cfg.gpio.board).get("echo", ""))
        except BoardError:
            board = ""
    try:
        mode = echo_path.choose_mode(cfg)
    except echo_path.EchoSetupError as exc:
        return [DoctorLine("echo path", False, str(exc))]
    guard = "on" if cfg.audio.echo_guard else "off"
    if mode == "process":
        what = (
            "WebRTC AEC3 (pywebrtc-audio)"
            if cfg.audio.echo_canceller == "webrtc"
            else "two-path linear filter"
        )
        detail = (
            f"in-process {what}, the device's own playback as the sample-aligned "
            f"reference (chimes included); self-wake guard {guard}"
        )
        ok: bool | None = True
        if server:
            ok = None
            detail += (
                f"; the sound server also loads {', '.join(server)} but audio.input_device is not its "
                "source: point audio.input_device at the echo-cancelled source, or unload the module "
                "(not both)"
            )
    elif mode == "system":
        detail = f"the sound server cancels ({cfg.audio.input_device!r}); in-process cancellation off"
        detail += f"; modules: {', '.join(server)}" if server else ""
        ok = True
    else:
        ok = None
        why = "audio.echo_cancel = off" if cfg.audio.echo_cancel == "off" else echo_path.canceller_available()
        detail = f"no echo cancellation ({why}): the device hears itself; barge-in over a reply is unreliable"
        detail += (
            f"; the sound server has {', '.join(server)}: use its source as audio.input_device"
            if server
            else ""
        )
    lines = [DoctorLine("echo path", ok, detail)]
    if board:
        lines.append(DoctorLine("echo board", None, f"{cfg.gpio.board}: {board}"))
    return lines


def _device_line(name: str, devices: list[dict[str, Any]], wanted: str, what: str) -> DoctorLine:
    names = [f"{d['index']}: {d['name']}" for d in devices]
    if not devices:
        return DoctorLine(name, False, f"no {what} found (no sound card, or the user is not in `audio`)")
    listing = "; ".join(names)
    if not wanted:
        return DoctorLine(name, True, f"default device; available: {listing}")
    match = [d for d in devices if wanted == str(d["index"]) or wanted.lower() in str(d["name"]).lower()]
    if not match:
        return DoctorLine(name, False, f"no device matches {wanted!r}; available: {listing}")
    return DoctorLine(name, True, f"{wanted!r} → {match[0]['index']}: {match[0]['name']}")


def _gpio(cfg: Config) -> list[DoctorLine]:
    from edge_voice.core.boards import BoardError, board_notes
    from edge_voice.hw.pins import PI_GPIO_FIX, board_model, check_gpio, detect_board, gpio_pins

    g = cfg.gpio
    if not g.enabled:
        return [DoctorLine("gpio", None, "gpio.enabled = false (no LEDs or button)")]
    lines = []
    if g.board:
        try:
            notes = board_notes(g.board)
            lines.append(
                DoctorLine(
                    "gpio board",
                    True,
                    f"{g.board}: {notes.get('name', '')}; supported: "
                    + ", ".join(notes.get("supported", [])),
                )
            )
        except BoardError as exc:
            lines.append(DoctorLine("gpio board", False, str(exc)))
    model = board_model()
    profile = detect_board(model)
    if model:
        hint = f" (profile: gpio.board = {profile!r})" if profile and profile != g.board else ""
        lines.append(DoctorLine("board", True, f"{model}{hint}"))
    if "Raspberry Pi" in model and g.pin_factory in ("auto", "lgpio"):
        try:
            import lgpio  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            lines.append(DoctorLine("gpio library", False, f"lgpio is not installed; fix: {PI_GPIO_FIX}"))
    pins = gpio_pins(g)
    if not pins:
        lines.append(DoctorLine("gpio pins", None, "no led_pins and no button_pin configured"))
    return [*lines, *(DoctorLine(what, ok, msg) for what, ok, msg in check_gpio(g.pin_factory, pins))]


def _mqtt(cfg: Config) -> list[DoctorLine]:
    m = cfg.mqtt
    if not m.enabled:
        return [DoctorLine("mqtt", None, "mqtt.enabled = false")]
    where = f"{m.host}:{m.port}"
    if m.tls:
        from edge_voice.integrations.mqtt import tls_context

        try:  # the files first: a bad key is this box's problem, whatever the broker does
            tls_context(m)
        except ConfigError as exc:
            return [DoctorLine("mqtt broker", False, str(exc))]
    try:
        with socket.create_connection((m.host, m.port), timeout=BROKER_TIMEOUT_S):
            pass
    except OSError as exc:
        return [DoctorLine("mqtt broker", False, f"{where} unreachable: {exc}")]
    verdict = broker_login(cfg, BROKER_TIMEOUT_S)
    if verdict is None:
        return [
            DoctorLine(
                "mqtt broker",
                True,
                f"{where} accepted the connection" + (f" as {m.username}" if m.username else ""),
            )
        ]
    return [DoctorLine("mqtt broker", False, f"{where}: {verdict}")]


def broker_login(cfg: Config, timeout_s: float) -> str | None:
    """Connect with the configured TLS and credentials. None = accepted, else why not."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge_voice.integrations.mqtt import tls_context

    m = cfg.mqtt
    done = threading.Event()
    result: list[str | None] = ["no CONNACK within the timeout"]

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result[0] = None if not reason.is_failure else f"refused: {reason}"
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-voice-doctor-{os.getpid()}")
    client.on_connect = on_connect
    try:
        if m.tls:
            client.tls_set_context(tls_context(m))
    except ConfigError as exc:
        return str(exc)
    if m.username:
        client.username_pw_set(m.username, os.environ.get(m.password_env))
    try:
        client.connect(m.host, m.port, keepalive=10)
        client.loop_start()
        done.wait(timeout_s)
        client.disconnect()
        client.loop_stop()
    except (OSError, ValueError) as exc:  # TLS handshake, DNS, …
        return f"{type(exc).__name__}: {exc}"
    if result[0] and m.username and os.environ.get(m.password_env) is None:
        return f"{result[0]} (${m.password_env} is not set)"
    return result[0]


def _service(_cfg: Config) -> list[DoctorLine]:
    from edge_voice.integrations.sd_notify import Notifier

    n = Notifier()
    if not n.enabled:
        return [DoctorLine("systemd", None, "not running under systemd (no $NOTIFY_SOCKET)")]
    interval = n.watchdog_interval_s()
    wd = f"watchdog every {interval:.1f} s" if interval else "no watchdog"
    return [DoctorLine("systemd", True, f"notify socket present, {wd}")]
