"""``runtime/shutdown.py``: engine threads are joined against one deadline while their native calls are
interrupted again at every poll; a thread that outlives it is remembered, and the program then exits
with its status without finalizing (finalizing under a thread inside onnxruntime aborts: note 153)."""

from __future__ import annotations

import threading

from edge_voice.runtime import shutdown


class Native:
    """A fake ``Interruptible``: a "native call" that ends at the ``n``-th interrupt (a call that began
    after the first interrupt needs another one: the next sentence, the retry)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0
        self.ended = threading.Event()

    def interrupt(self) -> bool:
        self.calls += 1
        if self.calls >= self.n:
            self.ended.set()
        return True


def test_threads_are_joined_while_their_native_calls_are_interrupted_again() -> None:
    native = Native(3)
    t = threading.Thread(target=lambda: native.ended.wait(30), name="tts")
    t.start()
    assert shutdown.stop_threads([t], [native], timeout_s=30) == []
    assert native.calls == 3 and not t.is_alive() and shutdown.lingering() == []


def test_a_thread_that_outlives_the_deadline_is_named_and_remembered_while_alive() -> None:
    release = threading.Event()
    stuck = threading.Thread(target=lambda: release.wait(30), name="asr", daemon=True)
    stuck.start()
    done = threading.Thread(target=lambda: None, name="llm")
    done.start()
    done.join()
    ticks = iter([0.0, 0.0, 5.0, 99.0])  # a fake clock: the deadline passes after one poll
    assert shutdown.stop_threads([done, stuck], [], timeout_s=10, clock=lambda: next(ticks)) == ["asr"]
    assert shutdown.lingering() == ["asr"]
    exits: list[int] = []
    assert shutdown.exit_status(4, exit_now=exits.append) == 4 and exits == [4]  # left without finalizing
    release.set()
    stuck.join(5)
    assert shutdown.lingering() == []  # it ended after all: an ordinary exit
    assert shutdown.exit_status(0, exit_now=exits.append) == 0 and exits == [4]


def test_no_threads_no_wait() -> None:
    assert shutdown.stop_threads([], [Native(1)], timeout_s=0) == []


def test_an_engines_own_native_thread_alive_at_exit_also_skips_finalizing() -> None:
    """The LLM's request thread (llama.cpp calls back into Python on it) is not an engine thread the
    daemon joins: registered in ``NATIVE_THREADS``, it counts at the exit while it runs."""
    from edge_voice.engines.base import NATIVE_THREADS

    release = threading.Event()
    bridge = threading.Thread(target=lambda: release.wait(30), name="llm-request", daemon=True)
    NATIVE_THREADS.add(bridge)
    bridge.start()
    exits: list[int] = []
    try:
        assert shutdown.lingering() == ["llm-request"]
        assert shutdown.exit_status(0, exit_now=exits.append) == 0 and exits == [0]
    finally:
        release.set()
        bridge.join(5)
    assert shutdown.lingering() == []
