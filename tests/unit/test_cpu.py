"""The free-core meter (``runtime.cpu``): other processes' load from /proc, never our own."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from edge_voice.runtime import cpu
from edge_voice.runtime.cpu import CpuSample, free_cores, others_busy, passive_openmp_waits, read_sample


def sample(total: int, idle: int, own: int, ncpu: int = 2, t: float = 0.0) -> CpuSample:
    return CpuSample(t, total, idle, own, ncpu)


def test_our_own_threads_do_not_count_as_load() -> None:
    # 2 CPUs, 200 jiffies: 100 idle, 100 busy, all of it ours -> nobody else is busy
    assert others_busy(sample(0, 0, 0), sample(200, 100, 100)) == 0.0
    # the same, but the busy 100 jiffies are another process's: one core's worth
    assert others_busy(sample(0, 0, 0), sample(200, 100, 0)) == pytest.approx(1.0)
    assert others_busy(sample(5, 5, 5), sample(5, 5, 5)) == 0.0  # no time passed


@pytest.mark.parametrize(
    ("busy", "usable", "free"),
    [(0.0, 2, 2), (0.3, 2, 2), (0.4, 2, 1), (1.0, 2, 1), (1.9, 2, 1), (3.0, 2, 1), (1.0, 4, 3), (2.5, 4, 1)],
)
def test_free_cores_counts_a_core_taken_above_a_share_and_never_below_one(
    busy: float, usable: int, free: int
) -> None:
    assert free_cores(busy, usable) == free


def test_read_sample_parses_proc(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "stat").write_text(
        "cpu  10 1 5 100 4 0 0 0 0 0\ncpu0 5 0 2 50 2 0 0 0 0 0\ncpu1 5 1 3 50 2 0 0 0 0 0\nintr 1\n"
    )
    # a command name with spaces and parentheses must not shift the fields
    fields = ["S"] + ["0"] * 10 + ["7", "3"] + ["0"] * 30
    (tmp_path / "self/stat").write_text("42 (a b) c) " + " ".join(fields) + "\n")
    s = read_sample(tmp_path)
    assert s is not None and (s.total, s.idle, s.own, s.ncpu) == (120, 104, 10, 2)
    assert read_sample(tmp_path / "missing") is None


def test_read_sample_on_this_machine() -> None:
    s = read_sample()
    assert s is not None and s.ncpu >= 1 and s.total > s.idle >= 0 and s.own >= 0


def test_meter_judges_the_recent_window_only() -> None:
    """A process that started 1 s ago shows as a full busy core, not diluted by the quiet minute before."""
    readings = iter(
        [
            sample(0, 0, 0, t=0.0),  # quiet minute: both cores idle
            sample(12000, 12000, 0, t=60.0),
            sample(12200, 12100, 0, t=60.5),  # then another process holds one core
            sample(12400, 12200, 0, t=61.0),
            sample(12600, 12300, 0, t=61.5),  # read by busy()
        ]
    )
    meter = cpu.CpuMeter(sample_s=0.5, window_s=1.0, read=lambda: next(readings))
    meter.usable = 2
    for _ in range(4):
        meter.sample()
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
    import threading

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


def test_niced_load_yields_to_a_thread_that_is_not_niced() -> None:
    """Another process's niced time (a ``nice -n 19`` build) is left out of the load only when asked for:
    a niced neighbour barely runs while a nice-0 engine thread wants the core."""
    a = CpuSample(0.0, 0, 0, 0, 2, niced=0)
    b = CpuSample(1.0, 200, 40, 20, 2, niced=100)  # 140 busy of others, 100 of it niced
    assert others_busy(a, b) == pytest.approx(1.4)
    assert others_busy(a, b, niced_yields=True) == pytest.approx(0.4)
    assert free_cores(others_busy(a, b), 2) == 1 and free_cores(others_busy(a, b, True), 2) == 1
    b = CpuSample(1.0, 200, 100, 0, 2, niced=100)  # one core held by a niced hog, nothing else
    assert free_cores(others_busy(a, b), 2) == 1 and free_cores(others_busy(a, b, True), 2) == 2


def test_read_sample_takes_our_own_niced_threads_out_of_the_nice_column(tmp_path: Path) -> None:
    (tmp_path / "self/task/1").mkdir(parents=True)
    (tmp_path / "self/task/2").mkdir()
    (tmp_path / "stat").write_text("cpu  10 30 5 100 4 0 0 0 0 0\ncpu0 5 15 2 50 2 0 0 0 0 0\n")

    def stat(utime: int, nice: int) -> str:
        fields = ["S"] + ["0"] * 10 + [str(utime), "0"] + ["0"] * 3 + [str(nice)] + ["0"] * 20
        return "42 (edge voice) " + " ".join(fields) + "\n"

    (tmp_path / "self/stat").write_text(stat(25, 0))
    (tmp_path / "self/task/1/stat").write_text(stat(13, 0))  # the main thread
    (tmp_path / "self/task/2/stat").write_text(stat(12, 10))  # the LLM thread at llm.nice = 10
    s = read_sample(tmp_path)
    assert s is not None and s.niced == 30 - 12 and s.own == 25


def test_a_niced_thread_is_not_yielded_to() -> None:
    seen: list[bool] = []

    def niced() -> None:
        os.setpriority(os.PRIO_PROCESS, 0, 19)  # this thread only (Linux)
        seen.append(cpu.niced_yields_to_me())

    t = threading.Thread(target=niced)
    t.start()
    t.join()
    assert seen == [False]


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
