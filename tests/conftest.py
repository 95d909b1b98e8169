"""Shared by every test folder: the one polling helper, the hypothesis profiles, and the real engines
loaded once per session."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from edge_voice.core.config import AsrConfig, Config, TtsConfig

if TYPE_CHECKING:
    from edge_voice.runtime.daemon import Engines

# ------------------------------------------------------------------------------------------- hypothesis

# Few examples for a quick local run, the full count in CI: `make test` (and so .ci/run) sets
# HYPOTHESIS_PROFILE=ci. No deadline in either: speed is never asserted in tests, and the CI box is shared.
CI_EXAMPLES = 2000
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=CI_EXAMPLES, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def scaled(ci_count: int) -> int:
    """``max_examples`` for a property that runs ``ci_count`` examples in CI (fewer than the profile's,
    as each costs more) and the same share of the profile elsewhere: 500 in CI is 25 in "dev"."""
    return max(10, ci_count * settings().max_examples // CI_EXAMPLES)


# ---------------------------------------------------------------------------------------------- polling


def install_venv(script: Path, venv: Path) -> Path:
    """Run a test server's install script (idempotent: a no-op once installed) into ``venv``."""
    r = subprocess.run(
        ["sh", str(script), str(venv)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    if r.returncode != 0:
        pytest.fail(f"{script.name} failed (needs the package index once):\n{r.stderr[-3000:]}")
    return venv


def wait_until(
    pred: Callable[[], object], timeout_s: float = 10.0, what: str = "condition", poll_s: float = 0.01
) -> None:
    """Poll ``pred`` until it is true (liveness only: the deadline is generous and never a speed
    assertion)."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


async def wait_until_async(
    pred: Callable[[], object], timeout_s: float = 10.0, what: str = "condition", poll_s: float = 0.01
) -> None:
    """``wait_until`` inside an event loop (the loop keeps running while it waits)."""
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(poll_s)


# ---------------------------------------------------------------------------------------- real engines

# What the shared engines are loaded with; each test's daemon still runs with its own Config. The union
# of what the daemon tests need: a deterministic voice (a reply transcribed back says the same words on
# every run) and a roomy ASR decode budget (a competing process on the shared box once made whisper
# abort a 1 s command at the default 3 s). Neither changes a result on an idle machine.
ENGINES_CFG = Config(asr=AsrConfig(max_decode_ms=20000), tts=TtsConfig(deterministic=True))


@pytest.fixture(scope="session")
def session_engines() -> Engines:
    """Every real engine, loaded and warmed once for the whole run (the models are read-only; one daemon
    uses them at a time). Tests that need other backends, or close an engine, load their own."""
    from edge_voice.runtime.daemon import load_engines

    return load_engines(ENGINES_CFG)


@pytest.fixture
def engines(session_engines: Engines) -> Engines:
    """The session's engines for one test. A copy with its own intent matcher: a daemon replaces
    ``engines.intents`` on a config reload, and the matcher keeps running timers, so neither can reach
    the next test."""
    from edge_voice.engines import phonetic
    from edge_voice.engines.intents import RuleIntentMatcher

    # as the daemon builds it (load_engines): names compared by sound too
    matcher = RuleIntentMatcher(
        ENGINES_CFG.intents, skills=session_engines.skills, phonemes=phonetic.for_config(ENGINES_CFG)
    )
    return dataclasses.replace(session_engines, intents=matcher, clock_phrases=matcher.clock_phrases)
