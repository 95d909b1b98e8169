"""A real Debian ``mosquitto`` per test, on a free localhost port, plus a recording MQTT subscriber."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else ""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """One mosquitto process with a temp config. ``restart()`` keeps the port and the persistence db."""

    workdir: Path
    port: int
    users: dict[str, str] = field(default_factory=dict)
    tls: bool = False  # TLS listener with a throw-away CA: ``ca_file`` is what a client must trust
    # TLS that also requires a client certificate signed by the CA (``client_cert()`` makes one)
    client_certs: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.crt"

    def make_certificates(self) -> None:
        """A test CA and a server certificate for localhost / 127.0.0.1 (openssl CLI, EC keys: fast)."""
        d, ec = self.workdir, ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True)

        run(
            "req",
            "-x509",
            *ec,
            "-keyout",
            str(d / "ca.key"),
            "-out",
            str(self.ca_file),
            "-days",
            "2",
            "-subj",
            "/CN=edge-voice test CA",
        )
        run(
            "req",
            *ec,
            "-keyout",
            str(d / "server.key"),
            "-out",
            str(d / "server.csr"),
            "-subj",
            "/CN=localhost",
        )
        (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run(
            "x509",
            "-req",
            "-in",
            str(d / "server.csr"),
            "-CA",
            str(self.ca_file),
            "-CAkey",
            str(d / "ca.key"),
            "-CAcreateserial",
            "-out",
            str(d / "server.crt"),
            "-days",
            "2",
            "-extfile",
            str(d / "san.ext"),
        )

    def client_cert(self, name: str, ca: str = "ca") -> tuple[Path, Path]:
        """A client certificate and key for CN ``name``, signed by this broker's CA (``ca="ca"``) or by a
        throw-away CA of its own (any other name): (cert_file, key_file)."""
        d, ec = self.workdir, ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True)

        ca_crt, ca_key = (self.ca_file, d / "ca.key") if ca == "ca" else (d / f"{ca}.crt", d / f"{ca}.key")
        if not ca_crt.exists():
            run(
                "req",
                "-x509",
                *ec,
                "-keyout",
                str(ca_key),
                "-out",
                str(ca_crt),
                "-days",
                "2",
                "-subj",
                f"/CN={ca}",
            )
        key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt"
        run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
        run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(crt), "-days", "2")  # fmt: skip
        return crt, key

    @property
    def conf(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if self.users else 'true'}",
            # persistence keeps persistent subscriber sessions (and their queued QoS 1 messages) across a
            # restart, so a test subscriber sees everything the bridge sent
            "persistence true",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.workdir}/mosquitto.log",
            "log_type all",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # as root mosquitto would switch to `mosquitto` and lose the temp dir
        if self.tls:
            if not self.ca_file.exists():
                self.make_certificates()
            lines += [
                f"cafile {self.ca_file}",
                f"certfile {self.workdir / 'server.crt'}",
                f"keyfile {self.workdir / 'server.key'}",
            ]
            if self.client_certs:  # the certificate's CN is the user name (ACLs can name it)
                lines += ["require_certificate true", "use_identity_as_username true"]
        if self.users:
            pwfile = self.workdir / "passwd"
            pwfile.unlink(missing_ok=True)
            for i, (user, password) in enumerate(self.users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run(["mosquitto_passwd", *flags, str(pwfile), user, password], check=True)
            lines.append(f"password_file {pwfile}")
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.write_config()
        proc = self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

        def listening() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                if proc.poll() is not None:  # fail now, with its log, rather than at the deadline
                    log = (self.workdir / "mosquitto.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"mosquitto exited with {proc.returncode}: {log}") from None
                return False

        wait_until(listening, 10, "mosquitto to open its port", poll_s=0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def start_broker(
    tmp_path: Path, users: dict[str, str] | None = None, tls: bool = False, client_certs: bool = False
) -> Broker:
    if not MOSQUITTO:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    if tls and not shutil.which("openssl"):
        pytest.skip("openssl is not installed (needed to make test certificates)")
    workdir = tmp_path / f"mosquitto-{free_port()}"
    workdir.mkdir()
    broker = Broker(workdir, free_port(), dict(users or {}), tls or client_certs, client_certs)
    broker.start()
    return broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    broker = start_broker(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """``broker_factory(users={"name": "password"}, tls=True)`` → a broker with a mosquitto_passwd file
    and/or a TLS listener (``client_certs=True``: one that requires a client certificate)."""
    started: list[Broker] = []

    def make(users: dict[str, str] | None = None, tls: bool = False, client_certs: bool = False) -> Broker:
        broker = start_broker(tmp_path, users, tls, client_certs)
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A paho client recording every message. ``persistent`` = clean_session False (survives restarts)."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        client_id: str = "",
        persistent: bool = False,
        username: str = "",
        password: str = "",
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"sub-{id(self)}",
            clean_session=not persistent,
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 2)

        def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if not reason.is_failure:
                c.subscribe([(t, 1) for t in topics])

        def on_subscribe(*_a: Any) -> None:
            self._subscribed.set()

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            with self._lock:
                self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscriber: no SUBACK")

    def on(self, topic_prefix: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.startswith(topic_prefix)]

    def wait_for(self, topic_prefix: str, count: int, timeout_s: float = 15.0) -> list[Received]:
        wait_until(
            lambda: len(self.on(topic_prefix)) >= count,
            timeout_s,
            f"{count} messages on {topic_prefix} (have {len(self.on(topic_prefix))})",
        )
        return self.on(topic_prefix)

    def last(self, topic: str, timeout_s: float = 15.0) -> Received:
        self.wait_for(topic, 1, timeout_s)
        return self.on(topic)[-1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, topics: list[str], **kwargs: Any) -> Subscriber:
        sub = Subscriber(port, topics, **kwargs)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()
