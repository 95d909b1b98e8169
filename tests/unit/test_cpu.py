"""The free-core meter (``runtime.cpu``): other processes' load from /proc, never our own."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from edge_voice.runtime import cpu
from edge_voice.runtime.cpu import CpuSample, free_cores, others_busy, passive_openmp_waits, read_sample

ME = 4242  # "our" pid in the fixtures


def sample(total: int, idle: int, own: int, ncpu: int = 2, t: float = 0.0) -> CpuSample:
    return CpuSample(t, total, idle, own, ncpu)


class FakeProc:
    """A synthetic /proc: ``/proc/stat``'s first lines and ``<pid>/stat`` per process; ``tick`` moves
    every CPU column and process on by what they did (no real clock: ``now`` is set by the test)."""

    def __init__(self, root: Path, ncpu: int = 2) -> None:
        self.root, self.ncpu, self.now = root, ncpu, 0.0
        self.cpu = [0] * 8  # user nice system idle iowait irq softirq steal
        self.procs: dict[int, list[int]] = {}  # pid -> [nice, utime, stime, children's time]
        self.own = 0
        self.write()

    def tick(self, seconds: float, **cols: float) -> None:
        """``cols``: cores' worth per /proc/stat column over ``seconds`` (idle takes the rest)."""
        names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
        per_cpu = round(seconds * 100)
        used = 0
        for k, v in cols.items():
            self.cpu[names.index(k)] += round(v * per_cpu)
            used += round(v * per_cpu)
        self.cpu[3] += per_cpu * self.ncpu - used
        self.now += seconds
        self.write()

    def run(self, pid: int, nice: int, user_s: float = 0.0, system_s: float = 0.0) -> None:
        p = self.procs.setdefault(pid, [nice, 0, 0, 0])
        p[0], p[1], p[2] = nice, p[1] + round(user_s * 100), p[2] + round(system_s * 100)
        self.write()

    def end(self, pid: int, parent: int | None = None) -> None:
        """The process exits; ``parent`` waits for it: its whole time goes to the parent's cutime."""
        _, ut, st, kids = self.procs.pop(pid)
        (self.root / str(pid) / "stat").unlink()
        if parent is not None:
            self.procs[parent][3] += ut + st + kids
            self.write()

    def write(self) -> None:
        lines = [f"cpu  {' '.join(map(str, self.cpu))} 0 0"]
        lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(self.ncpu)]
        (self.root / "stat").write_text("\n".join([*lines, "intr 1"]) + "\n")
        for pid, (nice, ut, st, kids) in self.procs.items():
            (self.root / str(pid)).mkdir(exist_ok=True)
            fields = ["S"] + ["0"] * 10 + [str(ut), str(st), str(kids), "0", "20", str(nice)] + ["0"] * 30
            (self.root / str(pid) / "stat").write_text(f"{pid} (a b) c) " + " ".join(fields) + "\n")

    def read(self, watch: list[int] | None = None, floor: int = 0) -> CpuSample:
        s = read_sample(self.root, watch, floor, own=lambda: self.own, clock=lambda: self.now, me=ME)
        assert s is not None
        return s


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path)


def test_our_own_threads_do_not_count_as_load() -> None:
    # 2 CPUs, 200 jiffies: 100 idle, 100 busy, all of it ours -> nobody else is busy
    assert others_busy([sample(0, 0, 0), sample(200, 100, 100)]) == 0.0
    # the same, but the busy 100 jiffies are another process's: one core's worth
    assert others_busy([sample(0, 0, 0), sample(200, 100, 0)]) == pytest.approx(1.0)
    assert others_busy([sample(5, 5, 5), sample(5, 5, 5)]) == 0.0  # no time passed


@pytest.mark.parametrize(
    ("busy", "usable", "free"),
    [(0.0, 2, 2), (0.3, 2, 2), (0.4, 2, 1), (1.0, 2, 1), (1.9, 2, 1), (3.0, 2, 1), (1.0, 4, 3), (2.5, 4, 1)],
)
def test_free_cores_counts_a_core_taken_above_a_share_and_never_below_one(
    busy: float, usable: int, free: int
) -> None:
    assert free_cores(busy, usable) == free


def test_read_sample_parses_proc(proc: FakeProc) -> None:
    proc.cpu = [10, 1, 5, 100, 4, 0, 0, 3]
    proc.own = 10
    proc.run(ME, 0, 1, 1)  # our own entry is never read (under qemu it is a fake of zeros)
    proc.run(7, 19, user_s=0.5, system_s=0.25)  # a command name with ") " must not shift the fields
    proc.run(8, 0, user_s=1.0)
    s = proc.read()
    assert (s.total, s.idle, s.own, s.ncpu, s.steal, s.full) == (123, 104, 10, 2, 3, True)
    assert s.niced == {7: (19, 75)}  # only what is niced above us (floor 0)
    assert proc.read(floor=19).niced == {}  # a niced meter weighs nobody: all are its equals or better
    watched = proc.read(watch=[8, 9])  # re-read only these: 9 has gone
    assert watched.niced == {8: (0, 100)} and not watched.full
    assert read_sample(proc.root / "missing") is None


def test_read_sample_on_this_machine() -> None:
    s = read_sample()
    assert s is not None and s.ncpu >= 1 and s.total > s.idle >= 0 and s.own >= 0


def test_own_time_is_the_process_times_as_proc_reports_it() -> None:
    """``os.times()``, not /proc/self/stat (qemu-user fakes that one with zeros)."""

    def proc_self() -> int:
        f = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])

    sum(i * i for i in range(300_000))  # some CPU time of our own
    before, own, after = proc_self(), cpu.own_ticks(), proc_self()
    assert before - 2 <= own <= after + 2 and own > 0


def test_a_nice19_neighbour_leaves_both_cores_free_however_its_time_is_split(proc: FakeProc) -> None:
    """Design note 231's case: the only neighbours are nice-19 jobs (much of their time in the kernel)
    and the VM's steal. /proc/stat's ``nice`` column holds only their user time: the old reading left
    their system time and the steal as load and gave one free core."""
    proc.run(101, 19, 10, 10)
    proc.run(102, 19, 5, 1)
    a = proc.read()
    proc.tick(1.0, nice=1.2, system=0.5, steal=0.1)
    proc.run(101, 19, user_s=0.7, system_s=0.4)
    proc.run(102, 19, user_s=0.5, system_s=0.1)
    b = proc.read()
    old = ((b.total - a.total) - (b.idle - a.idle) - 120) / 100  # the old reading: the nice column out
    assert old == pytest.approx(0.6) and free_cores(old, 2) == 1
    assert others_busy([a, b]) == pytest.approx(1.7)  # everything but steal, nobody weighed
    got = others_busy([a, b], mine=0)
    assert got == pytest.approx(1.7 * 0.03, abs=0.02) and free_cores(got, 2) == 2
    # an assistant run at nice 19 itself competes with them as an equal: one core is theirs
    assert free_cores(others_busy([a, b], mine=19), 2) == 1


def test_a_neighbour_at_our_nice_takes_a_core(proc: FakeProc) -> None:
    proc.run(101, 19, 1, 1)
    proc.run(200, 0)  # the hog: nice 0 like us
    a = proc.read()
    proc.tick(1.0, user=1.0, nice=0.8)
    proc.run(200, 0, user_s=1.0)
    proc.run(101, 19, user_s=0.8)
    got = others_busy([a, proc.read()], mine=0)
    assert got == pytest.approx(1.0 + 0.8 * cpu.competing(19, 0), abs=0.01) and free_cores(got, 2) == 1


@pytest.mark.parametrize(("nice", "free"), [(1, 1), (5, 1), (10, 2), (19, 2)])
def test_a_neighbour_counts_by_the_share_its_nice_would_keep(proc: FakeProc, nice: int, free: int) -> None:
    """A full core's worth at nice 5 would still keep ~25 % of a core we both want: taken; at nice 10,
    ~10 %: free."""
    proc.run(300, nice)
    a = proc.read()
    proc.tick(1.0, nice=1.0)
    proc.run(300, nice, user_s=1.0)
    assert free_cores(others_busy([a, proc.read()], mine=0), 2) == free
    assert cpu.competing(0, 0) == 1.0 and cpu.competing(-5, 0) == 1.0
    assert cpu.competing(19, 0) == pytest.approx(0.029, abs=0.002)


def test_time_not_attributed_to_a_niced_process_counts_as_load(proc: FakeProc) -> None:
    """A niced process that ended between the reads, or was not read at both: its time stays load
    (a thread too few, never a thread on a held core)."""
    proc.run(101, 19, 1, 0)
    a = proc.read()
    proc.tick(1.0, nice=1.0)
    proc.end(101)
    assert others_busy([a, proc.read()], mine=0) == pytest.approx(1.0)
    proc.run(102, 19, 1, 0)  # found only at the second read
    a2 = proc.read()
    assert 102 not in a.niced and 102 in a2.niced


def test_a_niced_build_s_short_lived_children_reach_it_through_their_parent(proc: FakeProc) -> None:
    """``nice -n 19 make`` (or dpkg): the work is done by children that live under a second and are never
    read; once waited for, their time is the parent's children's time."""
    proc.run(500, 19)  # make
    a = proc.read()
    for child in range(501, 505):  # four compiler runs of 0.25 s each: both cores for 0.5 s
        proc.run(child, 19, user_s=0.2, system_s=0.05)
        proc.end(child, parent=500)
    proc.tick(0.5, nice=1.6, system=0.4)
    got = others_busy([a, proc.read()], mine=0)
    assert got == pytest.approx(2.0 * cpu.competing(19, 0), abs=0.01) and free_cores(got, 2) == 2


def test_a_watched_child_s_life_is_not_taken_off_twice(proc: FakeProc) -> None:
    """A niced child read while it ran, then waited for: its whole life lands in its parent's time at
    once. What is taken off never exceeds the nice and system columns: a nice-0 hog stays counted."""
    proc.run(500, 19)
    proc.run(501, 19, user_s=60.0)  # a long compile step, watched for a minute
    proc.run(200, 0)
    a = proc.read()
    proc.tick(1.0, nice=1.0, user=1.0)
    proc.run(501, 19, user_s=1.0)
    proc.end(501, parent=500)  # its 61 s reach make's cutime now
    proc.run(200, 0, user_s=1.0)
    got = others_busy([a, proc.read()], mine=0)
    assert got == pytest.approx(1.0, abs=0.01) and free_cores(got, 2) == 1


def test_the_meter_scans_rarely_and_re_reads_only_niced_processes_that_ran(proc: FakeProc) -> None:
    proc.run(101, 19, 5, 5)  # a nice-19 job that keeps running
    proc.run(102, 19, 1, 0)  # a niced process that sleeps throughout
    proc.run(200, 0)  # a nice-0 service, idle for now
    meter = cpu.CpuMeter(0.25, 1.0, proc.root, lambda: proc.now, rescan_s=2.0, nice=lambda: 0)
    meter.usable = 2

    def step(**run: float) -> None:
        proc.tick(0.25, nice=run.get("niced", 0.0), user=run.get("hog", 0.0))
        proc.run(101, 19, user_s=0.25 * run.get("niced", 0.0))
        proc.run(200, 0, user_s=0.25 * run.get("hog", 0.0))
        meter.sample()

    meter.sample()  # start-up: a scan
    assert meter.scans == 1 and meter._watch == {101, 102}  # the first scan cannot tell who runs
    for _ in range(12):  # 3 s of the niced job on 1.7 cores: weighed each sample
        step(niced=1.7)
    assert meter.scans == 2 and meter._watch == {101}  # the second scan (at 2 s) drops the sleeper
    assert meter.free() == 2
    for _ in range(4):  # a nice-0 neighbour holds a core: load counted -> a rescan (2 s since the last)
        step(niced=0.7, hog=1.0)
    assert meter.free() == 1 and meter.scans == 3
    for _ in range(4):  # 1 s more of it: not due again yet
        step(niced=0.7, hog=1.0)
    assert meter.scans == 3
    for _ in range(12):  # the neighbour stops: both cores free again
        step(niced=1.7)
    assert meter.free() == 2 and meter.scans == 4  # one more while the samples kept still held its load
    for _ in range(40):  # 10 s with only the niced job: nothing counted, nothing scanned
        step(niced=1.7)
    assert meter.free() == 2 and meter.scans == 4


def test_meter_judges_the_recent_window_only(proc: FakeProc) -> None:
    """A process that started 1 s ago shows as a full busy core, not diluted by the quiet minute before."""
    proc.run(200, 0)
    meter = cpu.CpuMeter(0.5, 1.0, proc.root, lambda: proc.now, nice=lambda: 0)
    meter.usable = 2
    meter.sample()
    proc.tick(60.0)  # quiet minute: both cores idle
    meter.sample()
    for _ in range(3):  # then another process holds one core
        proc.tick(0.5, user=1.0)
        proc.run(200, 0, user_s=0.5)
        meter.sample()
    proc.tick(0.5, user=1.0)  # read by busy()
    assert meter.free() == 1  # the window is 60.5 .. 61.5: one core busy


def test_openmp_waits_are_made_passive_unless_the_user_chose() -> None:
    env: dict[str, str] = {}
    assert passive_openmp_waits(env) and env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert not passive_openmp_waits(env) and env == {"OMP_WAIT_POLICY": "ACTIVE"}
    env = {"GOMP_SPINCOUNT": "10000"}
    assert not passive_openmp_waits(env) and "OMP_WAIT_POLICY" not in env
    assert cpu.usable_cores() == len(os.sched_getaffinity(0))


def test_realtime_priority_is_what_the_log_says() -> None:
    """SCHED_FIFO where allowed (root, or LimitRTPRIO), a readable refusal elsewhere; 0 leaves it alone."""

    done = threading.Event()
    t = threading.Thread(target=done.wait, daemon=True)
    t.start()
    try:
        tid = t.native_id or 0
        assert cpu.realtime_thread(tid, 0).startswith("off") and os.sched_getscheduler(tid) == os.SCHED_OTHER
        said = cpu.realtime_thread(tid, 1)
        fifo = os.sched_getscheduler(tid) == os.SCHED_FIFO
        assert (said == "SCHED_FIFO 1") == fifo and (fifo or said.startswith("not allowed here"))
    finally:
        done.set()
        t.join()


def test_adapting_to_load_caps_threads_and_neither_nices_nor_widens_the_llm() -> None:
    # a niced llama.cpp yields to a busy neighbour at nice 0 as much as to our TTS (design note 231)
    from edge_voice.core.config import Config
    from edge_voice.runtime.daemon import threads_for_free_cores

    base = Config()
    assert base.llm.nice > 0
    got = threads_for_free_cores(base, free=1)
    assert (got.llm.nice, got.llm.threads, got.tts.threads) == (0, 1, 1)
    assert got.llm.batch_threads == 0  # prompt evaluation on the generation's threads
    assert threads_for_free_cores(base, free=8).tts.threads == base.tts.threads
