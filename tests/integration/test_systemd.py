"""The systemd unit (systemd-analyze verify, required keys), sd_notify over a real socket, install files."""

from __future__ import annotations

import ast
import ctypes.util
import dataclasses
import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge_voice.audio import clips
from edge_voice.audio.wavio import write_wav
from edge_voice.core import config
from edge_voice.integrations.sd_notify import Notifier
from edge_voice.runtime.daemon import Engines

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "edge-voice.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value (keys like DeviceAllow= repeat)."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out[section][key.strip()].append(value.strip())
    return out


def test_unit_has_the_required_settings() -> None:
    svc = parse_unit(UNIT.read_text())["Service"]

    def one(key: str) -> str:
        assert len(svc[key]) == 1, f"{key}= set {len(svc[key])} times"
        return svc[key][0]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert one("WatchdogSec") == "30"
    assert one("Restart") == "on-failure"
    assert one("RestartPreventExitStatus") == "78"
    assert one("ExecStart") == "/opt/edge-voice/.venv/bin/edge-voice run"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("User") == "edge-voice"
    assert set(one("SupplementaryGroups").split()) == {"audio", "gpio"}
    assert "EDGE_VOICE_MODELS_DIR=/var/cache/edge-voice/models" in svc["Environment"]
    assert one("CacheDirectory") == "edge-voice" and one("ConfigurationDirectory") == "edge-voice"
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") == "true"
    assert one("NoNewPrivileges") == "true"
    assert one("PrivateTmp") == "true"
    assert "/var/cache/edge-voice" in one("ReadWritePaths")
    assert one("DevicePolicy") == "closed"
    allowed = {v.split()[0] for v in svc["DeviceAllow"]}
    assert {"char-alsa", "char-gpiochip"} <= allowed
    # Type=notify needs AF_UNIX to reach $NOTIFY_SOCKET; MQTT needs IP; nothing else
    assert set(one("RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert one("ProtectKernelTunables") == "true"
    assert one("MemoryDenyWriteExecute") == "true"
    assert svc["SystemCallFilter"][:2] == ["@system-service", "~@privileged @resources"]
    assert one("IPAddressDeny") == "any"
    allowed_ip = " ".join(svc["IPAddressAllow"]).split()
    assert {"localhost", "192.168.0.0/16", "10.0.0.0/8"} <= set(allowed_ip)
    # these would break audio/GPIO (devices hidden, groups dropped)
    for key in ("PrivateDevices", "PrivateUsers", "DynamicUser"):
        assert key not in svc, f"{key}= breaks audio or GPIO"
    assert parse_unit(UNIT.read_text())["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.fixture
def runnable_unit(tmp_path: Path) -> Iterator[Path]:
    """A copy of the unit whose ExecStart points at a binary that exists here: systemd-analyze verify
    fails on a missing ExecStart binary, and /opt/edge-voice is only there after `make install`."""
    text = UNIT.read_text()
    text, n = re.subn(r"^ExecStart=\S+", f"ExecStart={sys.executable}", text, flags=re.M)
    assert n == 1
    path = tmp_path / "edge-voice.service"
    path.write_text(text)
    yield path


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_passes(runnable_unit: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(runnable_unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "edge-voice.service" not in result.stderr, result.stderr  # no warnings about our unit either


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_catches_a_broken_unit(runnable_unit: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    broken = runnable_unit.read_text().replace("Type=notify", "Type=notifyy")
    runnable_unit.write_text(broken)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(runnable_unit)], capture_output=True, text=True, timeout=60
    )
    # systemd 252 warns ("Failed to parse service type") but still exits 0: the warning is what counts
    assert result.returncode != 0 or (runnable_unit.name in result.stderr and "notifyy" in result.stderr)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_security_exposure_is_low(runnable_unit: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(runnable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in result.stderr or "unrecognized option" in result.stderr:
        pytest.skip("this systemd-analyze has no offline security analysis")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    # systemd rates <= 3.9 "OK"; 10 = no sandboxing at all. 2.1 before session 10's settings.
    assert float(match.group(1)) <= 1.5


# ------------------------------------------------------------------------------ the unit's seccomp filters

SANDBOX = REPO / "tests" / "sandbox.py"
PROBE = """
import ctypes, mmap, os, socket, sys, threading
def outcome(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return e.errno
print({
    "chown": outcome(lambda: os.chown(sys.argv[1], os.getuid(), os.getgid())),
    "affinity": outcome(lambda: os.sched_setaffinity(0, os.sched_getaffinity(0))),
    "netlink": outcome(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()),
    "inet": outcome(lambda: socket.create_server(("127.0.0.1", 0)).close()),
    "unix": outcome(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).close()),
    "write+exec": outcome(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)),
    "exec": outcome(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC)),
    "nice": outcome(lambda: os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)),
    "ctypes callback": outcome(lambda: ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 0)()),
})
"""
needs_seccomp = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None or not ctypes.util.find_library("seccomp"),
    reason="needs systemd-analyze (syscall groups) and libseccomp",
)


def sandboxed(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``argv`` under the shipped unit's SystemCallFilter=, MemoryDenyWriteExecute= and
    RestrictAddressFamilies= (tests/sandbox.py: the same libseccomp rules systemd loads)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(SANDBOX), str(UNIT), "--", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@needs_seccomp
def test_the_units_filters_refuse_what_they_should_and_allow_what_the_daemon_uses(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("")
    result = sandboxed(sys.executable, "-c", PROBE, str(target), timeout=60)
    assert result.returncode == 0, result.stderr
    got = ast.literal_eval(result.stdout.strip())
    assert got == {
        "chown": errno.EPERM,  # ~@privileged
        "affinity": errno.EPERM,  # ~@resources
        "netlink": errno.EAFNOSUPPORT,  # RestrictAddressFamilies=
        "inet": "ok",  # MQTT, remote engines
        "unix": "ok",  # sd_notify, llama.cpp's socket
        "write+exec": errno.EPERM,  # MemoryDenyWriteExecute=
        "exec": "ok",
        "nice": "ok",  # llm.nice: setpriority is allowed back
        "ctypes callback": "ok",  # libffi's static trampolines: no W+X page
    }


@needs_seccomp
@pytest.mark.engines
@pytest.mark.slow
def test_every_engine_runs_under_the_units_filters(tmp_path: Path) -> None:
    """The demo (LiteRT wake word, Silero VAD and Piper on onnxruntime, whisper.cpp, intents) and an
    LLM answer (llama.cpp behind its Unix socket) under MemoryDenyWriteExecute= and the syscall filter:
    a JIT or a W+X trampoline anywhere would fail here as it would on the device."""
    cfg = tmp_path / "config.toml"
    cfg.write_text("[asr]\nmax_decode_ms = 60000\n")  # a loaded CI box must not abort a decode
    demo = sandboxed(
        sys.executable, "-m", "edge_voice", "--config", str(cfg), "demo", "--out", str(tmp_path), timeout=900
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    asked = sandboxed(
        sys.executable, "-m", "edge_voice", "--config", str(cfg), "ask", "--json", "--quiet",
        "What is the largest planet?", timeout=600,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr[-3000:]
    answer = json.loads(asked.stdout.strip().splitlines()[-1])
    assert answer["route"] == "llm" and answer["reply"], answer


# ----------------------------------------------------------------------------------------------- notify


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_notifier_sends_ready_watchdog_stopping(
    notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    n = Notifier()
    assert n.enabled and n.watchdog_interval_s() == 15.0
    assert n.ready()
    assert n.watchdog()
    assert n.status("listening")
    assert n.stopping()
    got = [sock.recv(4096) for _ in range(4)]
    assert got == [b"READY=1", b"WATCHDOG=1", b"STATUS=listening", b"STOPPING=1"]
    assert n.ready(status="models loaded")
    assert sock.recv(4096) == b"READY=1\nSTATUS=models loaded"
    assert n.disable_watchdog()
    assert sock.recv(4096) == b"WATCHDOG_USEC=0"


def test_notifier_abstract_socket() -> None:
    name = f"edge-voice-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_notifier_without_systemd_is_a_no_op(tmp_path: Path) -> None:
    n = Notifier({})
    assert not n.enabled and not n.ready() and not n.watchdog() and n.watchdog_interval_s() is None
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert not gone.ready()  # logged once, never raised
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "0"}).watchdog_interval_s() is None
    assert (
        Notifier(
            {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}
        ).watchdog_interval_s()
        is None
    )  # the watchdog is for another process


@contextmanager
def reading(sock: socket.socket) -> Iterator[list[bytes]]:
    """Every datagram sent to ``sock`` while the block runs, read as they come, as systemd does: unread,
    the socket queues only net.unix.max_dgram_qlen (often 10) and the sender's next one blocks."""
    got: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        sock.settimeout(0.05)
        while True:
            try:
                got.append(sock.recv(4096))
            except TimeoutError:
                if stop.is_set():  # and nothing more queued
                    return

    thread = threading.Thread(target=read, name="test-notify-reader", daemon=True)
    thread.start()
    try:
        yield got
    finally:
        stop.set()
        thread.join(5)


@pytest.mark.engines
@pytest.mark.parametrize(
    ("watchdog", "watchdog_usec"),
    [(True, "200000"), (False, "200000"), (True, None)],
    ids=["pings", "switched-off", "not-asked-for"],
)
def test_run_keeps_the_watchdog_alive_from_the_audio_path_unless_configured_off(
    watchdog: bool,
    watchdog_usec: str | None,
    notify_socket: tuple[socket.socket, str],
    engines: Engines,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``edge-voice run`` as systemd starts it (the real notify socket, the real daemon and engines) on
    3 s of a quiet room paced in real time, with ``service.watchdog`` from its config file."""
    from edge_voice.cli import main as cli
    from edge_voice.cli import run as run_cli

    sock, path = notify_socket
    monkeypatch.setattr(run_cli, "load_engines", lambda cfg, progress=None: engines)
    for name in [n for n in os.environ if n.startswith("EDGE_VOICE_")]:  # this run's config only
        monkeypatch.delenv(name)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    if watchdog_usec is None:
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_USEC", watchdog_usec)  # a ping asked for every 0.1 s
    wav, config_file = tmp_path / "quiet.wav", tmp_path / "config.toml"
    write_wav(wav, clips.silence(3000))
    config_file.write_text(f"[service]\nwatchdog = {str(watchdog).lower()}\n")
    argv = ["--config", str(config_file), "run", "--input", str(wav), "--output", str(tmp_path / "r.wav")]

    with reading(sock) as got:
        assert cli.main([*argv, "--no-mqtt"]) == 0
    assert b"READY=1" in got and got[-1] == b"STOPPING=1", got
    pings = [i for i, m in enumerate(got) if m == b"WATCHDOG=1"]
    if watchdog and watchdog_usec:
        assert len(pings) >= 2, got  # kept alive while the audio ran, not once
        assert min(pings) > got.index(b"READY=1")  # from the audio path, which starts after READY
        assert b"WATCHDOG_USEC=0" not in got
    elif watchdog_usec:
        # switched off for systemd first, before the models load, then never pinged
        assert got[0] == b"WATCHDOG_USEC=0" and pings == [], got
    else:
        assert pings == [] and b"WATCHDOG_USEC=0" not in got, got  # systemd asked for nothing


# ------------------------------------------------------------------------------------- install files


def test_example_config_is_all_defaults() -> None:
    """systemd/config.example.toml, with every `# key = value` line uncommented, is exactly Config()."""
    lines, in_array_table = [], False
    for raw in (REPO / "systemd" / "config.example.toml").read_text().splitlines():
        if raw.startswith("# [["):
            in_array_table = True  # an example of a repeated table, not a default
            continue
        if raw.startswith("["):
            in_array_table = False
            lines.append(raw)
            continue
        m = re.match(r"^# ([a-z_]+ = .*?)(\s+#.*)?$", raw)
        if m and not in_array_table:
            lines.append(m.group(1))
    table = tomllib.loads("\n".join(lines))
    assert config.from_mapping(table) == config.Config()
    # every key of every section is documented (intents.devices and llm.examples are shown as [[array]]
    # examples)
    missing = []
    defaults = config.Config()
    for f in dataclasses.fields(defaults):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            section = table.get(f.name, {})
            missing += [f"{f.name}.{g.name}" for g in dataclasses.fields(value) if g.name not in section]
        elif f.name not in table:
            missing.append(f.name)
    assert missing == ["intents.devices", "llm.examples"], f"undocumented in config.example.toml: {missing}"


def test_install_script_is_valid_bash() -> None:
    script = REPO / "systemd" / "install.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    for needle in ("useradd --system", "make -C", "config.example.toml", "daemon-reload", "enable"):
        assert needle in text


def test_unit_favours_the_assistant_and_leaves_realtime_to_a_drop_in() -> None:
    """CPUWeight/Nice favour a turn over a batch job. Realtime audio threads (audio.realtime_priority)
    cost 0.1 of exposure (issue 19's 1.5): the shipped unit refuses them (the daemon then runs them at
    normal priority, logged), a drop-in with LimitRTPRIO= and RestrictRealtime=false allows them."""
    svc = parse_unit(UNIT.read_text())["Service"]
    assert svc["RestrictRealtime"][-1] == "true" and "LimitRTPRIO" not in svc
    assert int(svc["CPUWeight"][-1]) > 100 and int(svc["Nice"][-1]) < 0
    assert svc["CPUSchedulingPolicy"][-1] == "other"  # only the two audio threads are realtime
