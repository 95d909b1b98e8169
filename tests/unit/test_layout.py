"""The import direction the layout promises: core ← audio/listen/engines/hw ← runtime ← integrations ← cli.
``edge_voice.core`` is pure turn logic: importing all of it loads nothing heavier than numpy."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import edge_voice.core

HEAVY = ("onnxruntime", "pywhispercpp", "xllamacpp", "piper", "paho", "gpiozero", "ai_edge_litert", "wyoming")
OUTER = ("runtime", "integrations", "cli", "engines", "audio", "listen", "hw", "bench", "models")


def test_core_imports_nothing_heavier_than_numpy() -> None:
    modules = [f"edge_voice.core.{m.name}" for m in pkgutil.iter_modules(edge_voice.core.__path__)]
    assert "edge_voice.core.orchestrator" in modules
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('\\n'.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = set(loaded.stdout.split())
    heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
    outer = sorted(n for n in names if n.startswith("edge_voice.") and n.split(".")[1] in OUTER)
    assert heavy == [] and outer == []
