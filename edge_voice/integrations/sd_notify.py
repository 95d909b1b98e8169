"""systemd integration without a dependency: sd_notify is one datagram to ``$NOTIFY_SOCKET``.

``Notifier`` is a no-op when the daemon does not run under systemd (no ``$NOTIFY_SOCKET``), so callers
never branch. Send READY after every model is loaded and warmed, WATCHDOG from the audio path (so a
stalled pipeline gets restarted) at ``watchdog_interval_s()``, STOPPING on shutdown. With
``service.watchdog = false`` the daemon sends ``disable_watchdog()`` instead of keep-alives.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Thread-safe (each call sends one datagram). Errors are logged once, never raised."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET", "")
        # a leading '@' is an abstract socket: the name starts with a NUL byte
        self._addr = "\0" + addr[1:] if addr.startswith("@") else addr
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self._addr)

    def notify(self, state: str) -> bool:
        """Send ``state`` (e.g. "READY=1\\nSTATUS=…"). True if a datagram was sent."""
        if not self._addr:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(state.encode(), self._addr)
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("sd_notify to %r failed: %s", self._addr.replace("\0", "@"), exc)
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def disable_watchdog(self) -> bool:
        """Switch systemd's watchdog off for this run: ``WATCHDOG_USEC=`` overrides the unit's
        ``WatchdogSec=`` and 0 stops its timer. A daemon sending no keep-alives would otherwise be killed."""
        return self.notify("WATCHDOG_USEC=0")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1" + (f"\nSTATUS={status}" if status else ""))

    def reloading(self) -> bool:
        return self.notify("RELOADING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog_interval_s(self) -> float | None:
        """Half of ``$WATCHDOG_USEC`` in seconds (systemd's advice), or None if no watchdog is asked for
        (or ``$WATCHDOG_PID`` names another process)."""
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        return usec / 2e6 if usec > 0 else None
