"""A minimal client of Home Assistant's websocket API (``/api/websocket``): connect, authenticate with the
long-lived token, send a few commands, collect their results, close. Only what learning devices needs
(HA's entity, area and device registries are not on its REST API): no subscriptions, no compression,
no fragmented frames from us. Bounded: one absolute deadline for everything, ``max_bytes`` for all that
is read. Stdlib only (RFC 6455 is small), so no websocket library is a dependency of the daemon."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from edge_voice.engines.base import RemoteError

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class _Conn:
    def __init__(self, sock: socket.socket, deadline: float, max_bytes: int) -> None:
        self.sock, self.deadline, self.left, self.buf = sock, deadline, max_bytes, b""

    def _fill(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RemoteError("home assistant websocket: connection closed")
        self.left -= len(chunk)
        if self.left < 0:
            raise RemoteError("home assistant websocket: answer too large")
        self.buf += chunk

    def _recv(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_headers(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 16384:
                raise RemoteError("home assistant websocket: handshake headers too large")
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head

    def send(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        n = len(data)
        head = bytes([0x81])  # FIN + text
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)  # a client must mask every frame
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.settimeout(max(0.001, self.deadline - time.monotonic()))
        self.sock.sendall(head + mask + masked)

    def message(self) -> Any:
        """The next text message as JSON (pings answered, continuation frames joined)."""
        parts: list[bytes] = []
        while True:
            b0, b1 = self._recv(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._recv(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._recv(8))
            if n > self.left:
                raise RemoteError("home assistant websocket: answer too large")
            mask = self._recv(4) if b1 & 0x80 else b""
            data = self._recv(n) if n else b""
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            if opcode == 0x8:
                raise RemoteError("home assistant websocket: closed by the server")
            if opcode == 0x9:  # ping → pong
                self.sock.sendall(bytes([0x8A, 0x80 | len(data)]) + b"\0\0\0\0" + data)
                continue
            if opcode in (0x1, 0x0):
                parts.append(data)
                if b0 & 0x80:
                    try:
                        return json.loads(b"".join(parts))
                    except ValueError:
                        raise RemoteError("home assistant websocket: a message is not JSON") from None
                continue
            # binary or pong: not part of HA's command protocol; ignored


def commands(
    url: str, token: str, cmds: Sequence[dict[str, Any]], timeout_ms: int, max_bytes: int
) -> list[Any]:
    """Each command's ``result``, in order. Raises ``RemoteError`` (never with the token in it) on any
    failure: refused, TLS, handshake, ``auth_invalid``, an unsuccessful command, the deadline."""
    u = urllib.parse.urlsplit(url)
    https = u.scheme == "https"
    host, port = u.hostname or "", u.port or (443 if https else 80)
    deadline = time.monotonic() + timeout_ms / 1000
    try:
        sock = socket.create_connection((host, port), timeout=timeout_ms / 1000)
    except OSError as exc:
        raise RemoteError(f"home assistant websocket: {type(exc).__name__}: {exc}") from None
    try:
        if https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        conn = _Conn(sock, deadline, max_bytes)
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path.rstrip("/") + "/api/websocket"
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = conn.read_headers().decode("latin-1").split("\r\n")
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if " 101 " not in head[0] + " " or fields.get("sec-websocket-accept") != accept:
            raise RemoteError(f"home assistant websocket: no upgrade ({head[0][:60]})")
        if not isinstance(first := conn.message(), dict) or first.get("type") != "auth_required":
            raise RemoteError("home assistant websocket: no auth_required")
        conn.send({"type": "auth", "access_token": token})
        if not isinstance(auth := conn.message(), dict) or auth.get("type") != "auth_ok":
            raise RemoteError("home assistant websocket: the token was refused")
        for i, cmd in enumerate(cmds, 1):
            conn.send({**cmd, "id": i})
        results: dict[int, Any] = {}
        while len(results) < len(cmds):
            msg = conn.message()
            if (
                not isinstance(msg, dict)
                or msg.get("type") != "result"
                or msg.get("id") not in range(1, len(cmds) + 1)
            ):
                continue
            if not msg.get("success"):
                name = cmds[msg["id"] - 1].get("type")
                raise RemoteError(f"home assistant websocket: {name} failed")
            results[msg["id"]] = msg.get("result")
        return [results[i] for i in range(1, len(cmds) + 1)]
    except TimeoutError:
        raise RemoteError(f"home assistant websocket: no answer within {timeout_ms} ms") from None
    except (OSError, ssl.SSLError, struct.error) as exc:
        raise RemoteError(f"home assistant websocket: {type(exc).__name__}") from None
    finally:
        sock.close()
