"""How many cores other processes leave us: engine thread counts follow it.

A board runs Home Assistant, Zigbee2MQTT or a database beside the assistant. ggml (whisper.cpp, llama.cpp)
splits every graph across its threads and waits at a barrier after each node by spinning: one thread on a
core another process holds stalls all the others, so a 2-thread decode on a 2-core box with one busy core
ran 7-20x slower (issue 22). Fewer threads, each on a core that is actually free, avoid it.

Measured from ``/proc/stat`` (all CPUs) minus ``/proc/self/stat`` (this process, every thread): the load of
*other* processes, so our own engines never count against us. Reading both files costs ~50 µs.

Niced load yields: a neighbour running at a positive nice (a backup, a ``nice -n 19`` build) gets a small
share of a core a nice-0 engine thread wants (CFS weight 15 against 1024 at nice 19, under 10 % from nice
10), so it does not take the core from us and counting it as busy left the engines on fewer threads than
the board could give them. ``/proc/stat``'s ``nice`` column is that time (with our own niced threads'
time taken out, from ``/proc/self/task``); it is left out of the load when the thread asking is itself not
niced — a niced assistant competes with niced neighbours as equals. /proc/stat does not say *how* nice:
a neighbour at nice 1–4 still takes 30–45 % of a contested core and is under-counted (rare: services
run at nice 0, background jobs at 10–19).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BUSY_SHARE = 0.35  # a core other processes use more than this much of counts as taken
SAMPLE_S = 0.25  # the meter's sampling period
WINDOW_S = 1.5  # free cores are judged over about this much of the recent past


@dataclass(frozen=True, slots=True)
class CpuSample:
    mono_s: float
    total: int  # jiffies of every CPU, all states
    idle: int  # idle + iowait
    own: int  # this process's user + system jiffies
    ncpu: int  # CPUs in /proc/stat (online)
    niced: int = 0  # other processes' user jiffies at a positive nice (theirs only: ours taken out)


def read_sample(proc: Path = Path("/proc")) -> CpuSample | None:
    """None where /proc is not Linux's (the meter then reports every core free)."""
    try:
        stat = (proc / "stat").read_text()
        own_fields = (proc / "self/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    lines = stat.splitlines()
    cpu = [int(x) for x in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    ncpu = sum(1 for ln in lines[1:] if ln.startswith("cpu"))
    own = int(own_fields[11]) + int(own_fields[12])  # utime, stime (fields 14, 15 of the whole line)
    niced = max(0, cpu[1] - _own_niced(proc / "self/task"))
    return CpuSample(time.monotonic(), sum(cpu), cpu[3] + cpu[4], own, max(1, ncpu), niced)


def _own_niced(tasks: Path) -> int:
    """User jiffies of this process's threads that run at a positive nice (``llm.nice``, or all of them
    under ``nice``): /proc/stat counts them in its ``nice`` column, which must hold only other processes'.
    A thread's time so far is attributed to its nice now (a thread's nice is set once, at its start)."""
    total = 0
    try:
        entries = list(tasks.iterdir())
    except OSError:
        return 0
    for task in entries:
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        if len(fields) > 16 and int(fields[16]) > 0:  # field 19 of the whole line: nice
            total += int(fields[11])
    return total


def others_busy(a: CpuSample, b: CpuSample, niced_yields: bool = False) -> float:
    """Cores' worth of CPU other processes used between two samples; ``niced_yields``: without their
    niced time (they yield to a thread that is not niced)."""
    total = b.total - a.total
    if total <= 0:
        return 0.0
    per_cpu = total / b.ncpu
    busy = (total - (b.idle - a.idle)) - (b.own - a.own)
    if niced_yields:
        busy -= b.niced - a.niced
    return max(0.0, busy / per_cpu)


def niced_yields_to_me() -> bool:
    """Does niced load yield to the calling thread (its own nice is 0 or less)?"""
    try:
        return os.getpriority(os.PRIO_PROCESS, 0) <= 0  # Linux: 0 = the calling thread
    except (AttributeError, OSError):
        return False


def usable_cores() -> int:
    """Cores this process may run on (affinity, a cgroup cpuset), not every core the board has."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_cores(busy: float, usable: int) -> int:
    """Usable cores minus those other processes hold (a core counts as held above ``BUSY_SHARE``); ≥ 1."""
    return max(1, usable - math.floor(busy + 1 - BUSY_SHARE))


def measure_free_cores(interval_s: float = 0.3) -> int:
    """Start-up: sample, wait, sample."""
    a = read_sample()
    time.sleep(interval_s)
    b = read_sample()
    if a is None or b is None:
        return usable_cores()
    return free_cores(others_busy(a, b, niced_yields_to_me()), usable_cores())


class CpuMeter:
    """Samples /proc every ``SAMPLE_S`` on its own thread; ``free()`` = free cores over the recent window.
    One per engine that adapts (the ASR); ``stop()`` ends the thread."""

    def __init__(
        self,
        sample_s: float = SAMPLE_S,
        window_s: float = WINDOW_S,
        read: Callable[[], CpuSample | None] = read_sample,
    ) -> None:
        self.sample_s, self.window_s, self.read = sample_s, window_s, read
        self._samples: deque[CpuSample] = deque(maxlen=max(2, int(window_s / sample_s) + 2))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.usable = usable_cores()

    def start(self) -> CpuMeter:
        if self._thread is None:
            self.sample()
            self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.sample_s):
            self.sample()

    def sample(self) -> None:
        s = self.read()
        if s is not None:
            with self._lock:
                self._samples.append(s)

    def busy(self) -> float:
        """Other processes' load, in cores, from the oldest sample within the window up to now."""
        now = self.read()
        with self._lock:
            past = [s for s in self._samples if now is not None and now.mono_s - s.mono_s <= self.window_s]
        if now is None or not past:
            return 0.0
        return others_busy(past[0], now, niced_yields_to_me())

    def free(self) -> int:
        return free_cores(self.busy(), self.usable)


def passive_openmp_waits(environ: dict[str, str] | None = None) -> bool:
    """whisper.cpp and llama.cpp run their threads under OpenMP (libgomp), whose idle workers spin for up
    to ~300k iterations between graphs by default: on a core another process needs, that spin is pure
    theft, and on a 2-core board our own engines steal from each other. PASSIVE makes them sleep at once.
    Must run before libgomp loads (it reads the environment once); a value the user set is kept.
    True if this call set it."""
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return False
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def realtime_thread(native_id: int, priority: int) -> str:
    """SCHED_FIFO at ``priority`` for one thread (by its native id), so a busy neighbour cannot delay a
    microphone read or a speaker write past the device's buffer. Allowed without privileges up to
    RLIMIT_RTPRIO (the unit's LimitRTPRIO=); refused where the unit or a cgroup forbids realtime. The
    threads only move audio between the device and bounded queues (no inference), so they cannot starve
    the engines. Returns what happened, for the log."""
    if priority <= 0:
        return "off (audio.realtime_priority = 0)"
    try:
        os.sched_setscheduler(native_id, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:  # EPERM: no LimitRTPRIO / RestrictRealtime=; not Linux
        return f"not allowed here ({exc}); running at normal priority"
    return f"SCHED_FIFO {priority}"
