"""Stopping the engine threads before the interpreter finalizes.

An engine thread still inside native code when the main thread returns is fatal, not merely untidy: at
finalization Python (3.11–3.13) ends a daemon thread with ``pthread_exit`` as soon as it next takes the
GIL, and that forced unwind runs through C++ frames that cannot be unwound (onnxruntime's pybind11 call,
whisper.cpp's abort callback): ``std::terminate``, SIGABRT, and the run's exit status is lost. The
emulated Pi's demo ended that way (Piper still synthesising a cached phrase), and a slow or busy board
can too. So the daemon ends the native calls under way (``Interruptible``) while it joins its threads
against one deadline, and the CLI leaves with ``os._exit`` — after flushing — if a thread is still alive.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence

from edge_voice.engines.base import NATIVE_THREADS, Interruptible

log = logging.getLogger(__name__)

JOIN_S = 10.0  # all engine threads together; an interrupted native call ends within one graph node
POLL_S = 0.05  # how often the native calls are interrupted again while the threads are joined

_lingering: list[threading.Thread] = []  # process-wide: threads a shutdown could not join


def stop_threads(
    threads: Sequence[threading.Thread],
    engines: Sequence[Interruptible] = (),
    timeout_s: float = JOIN_S,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Join ``threads`` (already told to stop) against one deadline, interrupting ``engines``' native
    calls at every poll — a call that starts after an interrupt (the next sentence, the retry) is ended
    by the next one. Returns the names of the threads still alive at the deadline, and remembers them
    for ``exit_status``."""
    end = clock() + timeout_s
    alive = [t for t in threads if t.is_alive()]
    while alive and clock() < end:
        for engine in engines:
            engine.interrupt()
        alive[0].join(POLL_S)
        alive = [t for t in alive if t.is_alive()]
    if alive:
        names = [t.name for t in alive]
        log.warning(
            "shutdown: %s still running after %.0f s; the process will exit without them", names, timeout_s
        )
        _lingering.extend(alive)
    return [t.name for t in alive]


def lingering() -> list[str]:
    """Names of the threads a shutdown gave up on, and of engines' own native threads (``NATIVE_THREADS``),
    that are still alive."""
    threads = dict.fromkeys([*_lingering, *NATIVE_THREADS])
    return [t.name for t in threads if t.is_alive()]


def _leave(code: int) -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(code)


def exit_status(code: int, exit_now: Callable[[int], None] = _leave) -> int:
    """The program's last step (not ``main``'s: tests call that in-process). With no thread left behind,
    ``code``: the interpreter finalizes as usual. Otherwise the logs and output are flushed and the
    process ends here, without finalizing, so it exits with ``code`` instead of aborting."""
    left = lingering()
    if not left:
        return code
    log.error("exiting with %s still running (not finalizing: it would abort the process)", left)
    exit_now(code)
    return code  # only a test's exit_now returns
