"""How many cores other processes leave us: engine thread counts follow it.

A board runs Home Assistant, Zigbee2MQTT or a database beside the assistant. ggml (whisper.cpp, llama.cpp)
splits every graph across its threads and waits at a barrier after each node by spinning: one thread on a
core another process holds stalls all the others, so a 2-thread decode on a 2-core box with one busy core
ran 7-20x slower (issue 22). Fewer threads, each on a core that is actually free, avoid it.

What counts is CPU a neighbour would still take from us if we wanted the core. ``/proc/stat`` gives every
CPU's time (~30 µs to read); our own time (``os.times``) and the VM's steal come off it (design note 270:
steal is the hypervisor's, spread over the virtual CPUs, not a core our threads could avoid, and a board
has none). A neighbour at a higher nice than ours yields most of a contested core (CFS weight 15 against
1024 at nice 19: ~1.5 % of it), so its time is weighted by the share it would keep (``competing``): that
needs per-process time, ``/proc/<pid>/stat`` (user + system; ``/proc/stat``'s ``nice`` column has only
niced *user* time, so niced jobs' system time used to count as load, note 231). Reading every process
costs ~30 µs each (~3 ms for 100 here, a Pi runs ~200), so a full scan runs only at start-up and, while
the meter sees load it counts, at most every ``RESCAN_S``; each sample in between re-reads only the niced
processes that ran since the scan before (``MAX_WATCH`` at most). Whatever is not attributed — a process
that came and went between reads, interrupts, a niced process not yet found — counts as load: an error
costs a thread, never a core held by a neighbour.

Under qemu-user, ``/proc/self/stat`` is qemu's fake (utime and stime 0) and would count our own work as a
neighbour's; ``os.times()`` is the host's ``times()`` and is right, and the host's other processes are
real ``/proc`` entries.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

log = logging.getLogger(__name__)

PROC = Path("/proc")
BUSY_SHARE = 0.35  # a core other processes use more than this much of counts as taken
SAMPLE_S = 0.25  # the meter's sampling period
WINDOW_S = 1.5  # free cores are judged over about this much of the recent past
RESCAN_S = 2.0  # a full scan of /proc at most this often, and only while the meter counts load
MAX_WATCH = 64  # niced processes re-read per sample between scans (those that ran most)
NICEST = 19

Procs = Mapping[int, tuple[int, int]]  # pid -> (nice, user + system ticks)


@dataclass(frozen=True, slots=True)
class CpuSample:
    mono_s: float
    total: int  # ticks of every CPU, all states (steal too: it is time that passed)
    idle: int  # idle + iowait
    own: int  # this process's user + system ticks
    ncpu: int  # CPUs in /proc/stat (online)
    steal: int = 0  # the hypervisor's: not a neighbour's
    nice_system: int = 0  # the nice and system columns: the most niced processes can have used
    niced: Procs = field(default_factory=dict)  # other processes above the meter's nice, as read this time
    full: bool = False  # ``niced`` is every such process (a scan), not only the watched ones


def clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100


def own_ticks() -> int:
    """This process's user + system time in clock ticks, every thread (``times()``: right under qemu)."""
    t = os.times()
    return round((t.user + t.system) * clock_ticks())


def _proc(path: Path) -> tuple[int, int] | None:
    """(nice, its time) from one ``/proc/<pid>/stat``: user + system, its own and its reaped children's
    (a niced ``make`` or ``dpkg`` works in children that live under a second, never read themselves;
    children inherit the nice). None when the process has gone."""
    try:
        fd = os.open(path, os.O_RDONLY)  # not open(): a third cheaper, and a scan reads every process
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        fields = data.rsplit(b")", 1)[1].split()  # the command name may hold ") "
        return int(fields[16]), sum(int(x) for x in fields[11:15])  # fields 19 and 14-17 of the line
    except (OSError, IndexError, ValueError):
        return None


def scan(proc: Path, floor: int, me: int) -> dict[int, tuple[int, int]]:
    """Every other process niced above ``floor`` (nobody is above 19: then nothing is read)."""
    out: dict[int, tuple[int, int]] = {}
    if floor >= NICEST:
        return out
    try:
        names = os.listdir(proc)
    except OSError:
        return out
    for name in names:
        if name.isdigit() and int(name) != me:
            got = _proc(proc / name / "stat")
            if got is not None and got[0] > floor:
                out[int(name)] = got
    return out


def read_sample(
    proc: Path = PROC,
    watch: Collection[int] | None = None,
    floor: int = 0,
    own: Callable[[], int] = own_ticks,
    clock: Callable[[], float] = time.monotonic,
    me: int | None = None,
) -> CpuSample | None:
    """``/proc/stat`` and the niced processes: every one above ``floor`` (``watch`` None: a scan) or
    only the ``watch``ed pids. None where /proc is not Linux's (the meter then reports every core free)."""
    try:
        lines = (proc / "stat").read_text().splitlines()
        cpu = [int(x) for x in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return None
    cpu += [0] * (8 - len(cpu))  # old kernels: no steal column
    ncpu = sum(1 for ln in lines[1:] if ln.startswith("cpu"))
    me = os.getpid() if me is None else me
    if watch is None:
        niced: Procs = scan(proc, floor, me)
    else:
        niced = {pid: got for pid in watch if pid != me and (got := _proc(proc / str(pid) / "stat"))}
    return CpuSample(
        clock(), sum(cpu), cpu[3] + cpu[4], own(), max(1, ncpu), cpu[7], cpu[1] + cpu[2], niced, watch is None
    )


def weight(nice: int) -> float:
    """CFS's weight for a nice level (the kernel's table is 1024 / 1.25^nice, rounded)."""
    return 1024 / 1.25**nice


def competing(nice: int, mine: int) -> float:
    """How much of a neighbour's CPU time counts against a thread at ``mine``: its share of a core both
    want, relative to an equal's half (1 at our nice or below; nice 19 against 0: 0.03; 10: 0.19)."""
    w = weight(nice)
    return min(1.0, 2 * w / (w + weight(mine)))


def others_busy(samples: Sequence[CpuSample], mine: int | None = None) -> float:
    """Cores' worth of CPU other processes used from the first sample to the last, without steal; with
    ``mine`` (the asking thread's nice), niced processes' time weighted by ``competing``, counted between
    each two samples that both read the process (the rest counts whole). Per two samples, what is taken
    off is at most the nice and system columns' time: a watched child's whole life reaches its parent's
    children's time when it ends, after it was counted as it ran."""
    if len(samples) < 2:
        return 0.0
    a, b = samples[0], samples[-1]
    total = b.total - a.total
    if total <= 0:
        return 0.0
    busy: float = total - (b.idle - a.idle) - (b.steal - a.steal) - (b.own - a.own)
    if mine is not None:
        for x, y in pairwise(samples):
            off = 0.0
            for pid, (nice, ticks) in y.niced.items():
                before = x.niced.get(pid)
                if before is not None and ticks >= before[1] and nice > mine:
                    off += (ticks - before[1]) * (1 - competing(nice, mine))
            busy -= min(off, y.nice_system - x.nice_system)
    return max(0.0, busy / (total / b.ncpu))


def my_nice() -> int | None:
    """The calling thread's nice (Linux: 0 = the calling thread); None where it cannot be read."""
    try:
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        return None


def usable_cores() -> int:
    """Cores this process may run on (affinity, a cgroup cpuset), not every core the board has."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def free_cores(busy: float, usable: int) -> int:
    """Usable cores minus those other processes hold (a core counts as held above ``BUSY_SHARE``); ≥ 1."""
    return max(1, usable - math.floor(busy + 1 - BUSY_SHARE))


def measure_free_cores(
    interval_s: float = 0.3, proc: Path = PROC, sleep: Callable[[float], None] = time.sleep
) -> int:
    """Start-up: two scans ``interval_s`` apart (~2 x 3 ms here)."""
    mine = my_nice()
    floor = NICEST if mine is None else mine
    a = read_sample(proc, floor=floor)
    sleep(interval_s)
    b = read_sample(proc, floor=floor)
    if a is None or b is None:
        return usable_cores()
    return free_cores(others_busy([a, b], mine), usable_cores())


def to_watch(before: CpuSample | None, scanned: CpuSample) -> frozenset[int]:
    """The niced processes that ran between two scans (all of them after the first), the busiest first,
    at most ``MAX_WATCH``: the ones worth re-reading every sample."""
    grew = {
        pid: ticks - (before.niced.get(pid, (0, 0))[1] if before is not None else 0)
        for pid, (_, ticks) in scanned.niced.items()
    }
    ran = sorted((pid for pid, d in grew.items() if d > 0 or before is None), key=lambda p: -grew[p])
    return frozenset(ran[:MAX_WATCH])


class CpuMeter:
    """Samples /proc every ``sample_s`` on its own thread; ``free()`` = free cores over the recent window.
    One per engine that adapts (the ASR, which asks before every decode); ``stop()`` ends the thread.
    Processes niced above the nice the meter starts at are the ones it weighs (``floor``)."""

    def __init__(
        self,
        sample_s: float = SAMPLE_S,
        window_s: float = WINDOW_S,
        proc: Path = PROC,
        clock: Callable[[], float] = time.monotonic,
        own: Callable[[], int] = own_ticks,
        rescan_s: float = RESCAN_S,
        nice: Callable[[], int | None] = my_nice,
    ) -> None:
        """``nice``: the calling thread's nice (asked at start and by every ``busy``)."""
        self.sample_s, self.window_s, self.rescan_s = sample_s, window_s, rescan_s
        self.proc, self.clock, self.own, self.nice = proc, clock, own, nice
        self._samples: deque[CpuSample] = deque(maxlen=max(2, int(window_s / sample_s) + 2))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.usable = usable_cores()
        mine = nice()
        self.floor = NICEST if mine is None else mine
        self._watch: frozenset[int] = frozenset()
        self._scanned: CpuSample | None = None
        self.scans = 0

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

    def _read(self, full: bool) -> CpuSample | None:
        return read_sample(self.proc, None if full else self._watch, self.floor, self.own, self.clock)

    def sample(self) -> None:
        """One sample; a full scan instead when none was made for ``rescan_s`` and the samples kept show
        load the meter counts (an idle board is scanned twice after start-up, then never)."""
        with self._lock:
            kept = list(self._samples)
        due = self._scanned is None or self.clock() - self._scanned.mono_s >= self.rescan_s
        # the second scan is made anyway: it tells which niced processes run, the first cannot
        rescan = due and (self.scans < 2 or len(kept) < 2 or others_busy(kept, self.floor) >= BUSY_SHARE)
        s = self._read(rescan)
        if s is None:
            return
        if rescan:
            self._watch, self._scanned = to_watch(self._scanned, s), s
            self.scans += 1
        with self._lock:
            self._samples.append(s)

    def busy(self) -> float:
        """Other processes' load, in cores, from the oldest sample within the window up to now, as it
        counts against the calling thread's nice."""
        now = self._read(False)
        with self._lock:
            past = [s for s in self._samples if now is not None and now.mono_s - s.mono_s <= self.window_s]
        if now is None or not past:
            return 0.0
        return others_busy([*past, now], self.nice())

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
