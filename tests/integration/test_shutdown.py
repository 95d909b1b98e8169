"""Shutdown with an engine thread inside Piper (onnxruntime): the sentence under way is ended, and the
process exits with its own status. Before, the emulated Pi's demo aborted at exit (SIGABRT, "terminate
called without an active exception"): Python 3.11 ended the TTS thread, still synthesising a phrase for
the cache, with pthread_exit through onnxruntime's C++ frames. The same abort is reproduced on x86 by
returning from the main thread while a daemon thread synthesises (design note 153)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from edge_voice.core.cancel import NEVER
from edge_voice.core.config import TtsConfig
from edge_voice.engines.tts import PiperSynthesizer
from tests.conftest import wait_until

pytestmark = pytest.mark.engines

LONG = "This sentence keeps the voice busy for a good while, on and on, until somebody stops it at last"


@pytest.fixture(scope="module")
def tts() -> PiperSynthesizer:
    return PiperSynthesizer(dataclasses.replace(TtsConfig(threads=1), deterministic=True))


def test_interrupt_ends_the_sentence_under_way_and_only_that_one(tts: PiperSynthesizer) -> None:
    whole = len(tts.synthesize_all(LONG))
    out: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: out.append(tts.synthesize_all(LONG, NEVER)))
    worker.start()
    wait_until(lambda: tts._session._running is not None, timeout_s=30)
    while worker.is_alive():  # as shutdown.stop_threads does: again at every poll
        tts.interrupt()
        worker.join(0.05)
    assert len(out) == 1 and len(out[0]) < whole  # cut, and no exception reached the caller
    assert not tts.interrupt()  # nothing under way now
    assert len(tts.synthesize_all(LONG)) == whole  # the next sentence is not affected


SCRIPT = """
import time
from edge_voice.core.config import TtsConfig
from edge_voice.engines.tts import PhraseCache, PiperSynthesizer
from edge_voice.runtime import shutdown
from edge_voice.runtime.workers import PlaybackWorker, TtsWorker

class Sink:
    sample_rate = 22050
    def write(self, pcm): pass
    def flush(self): pass
    def close(self): pass

tts = PiperSynthesizer(TtsConfig(threads=1))
cache = PhraseCache(tts)
posted = []
worker = TtsWorker(tts, posted.append, PlaybackWorker(Sink(), posted.append, 20), cache, [LONG] * 20)
worker.start()
while tts._session._running is None:  # the phrase cache is being filled: inside onnxruntime
    time.sleep(0.01)
worker.stop()
left = shutdown.stop_threads([worker], [tts] if INTERRUPT else [], timeout_s=JOIN_S)
print("left", left, "cached", len(cache), flush=True)
"""


def _run(interrupt: bool, join_s: float) -> subprocess.CompletedProcess[str]:
    code = f"LONG = {LONG!r}\nINTERRUPT = {interrupt}\nJOIN_S = {join_s}\n" + SCRIPT
    code += "import sys\nfrom edge_voice.runtime.shutdown import exit_status\nsys.exit(exit_status(3))\n"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_a_shutdown_during_a_phrase_synthesis_ends_it_and_exits_with_the_status() -> None:
    proc = _run(interrupt=True, join_s=30)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "left [] cached 0" in proc.stdout  # joined; the phrase cut short was not cached
    assert "terminate called" not in proc.stderr


def test_a_thread_left_inside_onnxruntime_does_not_abort_the_exit() -> None:
    """No interrupt and no time to join: the thread is still synthesising when the program ends, and
    ``exit_status`` leaves without finalizing (finalizing here aborted 3 runs of 3 with SIGABRT)."""
    proc = _run(interrupt=False, join_s=0)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "left ['tts']" in proc.stdout
    assert "terminate called" not in proc.stderr
