"""Where edge-voice keeps what it can rebuild: ``$XDG_CACHE_HOME/edge-voice`` (derived models, the test
servers' own venvs, bench corpora)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "edge-voice", *parts)


def tool_venv(env_var: str, name: str) -> Path:
    """A test server's own venv (Wyoming servers, Home Assistant): ``$env_var``, else the cache's ``name``."""
    env = os.environ.get(env_var)
    return Path(env) if env else cache_dir(name)
