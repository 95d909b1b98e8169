"""A wheel built from this checkout and installed without ``-e`` carries the model manifest and the board
profiles: ``edge-voice models list`` and ``doctor`` run from it, outside the checkout.

The wheel is built from a copy of the source tree: an in-tree build reuses ``build/lib``, which keeps files
deleted from the sources and would hide a missing one. The installed copy is run with this venv's
interpreter (it supplies the dependencies) and ``PYTHONPATH`` = the install target, from an empty
directory, so neither the checkout nor the venv's editable finder can supply ``edge_voice``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "edge_voice" / "data"
BOARD = "pi5"
# build artefacts and local state a fresh clone does not have
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "out"
)


@dataclass(frozen=True)
class Installed:
    site: Path
    cwd: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args, "--quiet"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"pip {args[0]} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("install")
    src, dist, site, cwd = tmp / "src", tmp / "dist", tmp / "site", tmp / "elsewhere"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES)
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src))
    wheels = sorted(dist.glob("edge_voice-*.whl"))
    assert len(wheels) == 1, wheels
    _pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheels[0]))
    cwd.mkdir()
    # the box's model cache stays visible; nothing may redirect the manifest or the config
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "PYTHONPATH" and (not k.startswith("EDGE_VOICE_") or k == "EDGE_VOICE_MODELS_DIR")
    }
    env["PYTHONPATH"] = str(site)
    yield Installed(site, cwd, env)


def _manifest_names() -> set[str]:
    return set(tomllib.loads((DATA / "manifest.toml").read_text(encoding="utf-8"))["models"])


def _board_profile() -> dict[str, dict[str, object]]:
    return tomllib.loads((DATA / "boards" / f"{BOARD}.toml").read_text(encoding="utf-8"))


def _config(installed: Installed) -> Path:
    # the profile enables gpio and picks lgpio; mock pins (the user's key wins) work on any box, and
    # no broker is needed to judge the package
    cfg = installed.cwd.parent / "config.toml"
    cfg.write_text(f'[gpio]\nboard = "{BOARD}"\npin_factory = "mock"\n\n[mqtt]\nenabled = false\n')
    return cfg


def _listed(stdout: str) -> dict[str, str]:
    """``models list`` rows → {name: "ok" | "opt" | "BAD"} ("opt": an optional model, not installed)."""
    rows = [line.split(maxsplit=2) for line in stdout.splitlines() if line.strip()]
    return {row[1]: row[0] for row in rows}


def _verdict(lines: list[str], name: str) -> str:
    """The doctor line for check ``name`` ("<mark> <name> <detail>"), or ""."""
    return next((line for line in lines if line.split(maxsplit=1)[1].startswith(f"{name} ")), "")


def test_the_installed_package_is_the_wheel_with_its_data(installed: Installed) -> None:
    probe = installed.run(
        "-c",
        "import edge_voice; from edge_voice.models import registry; from edge_voice.core import boards\n"
        "print(edge_voice.__file__); print(registry.MANIFEST); print(boards.BOARDS_DIR)\n"
        "print(','.join(boards.board_names()))",
    )
    assert probe.returncode == 0, probe.stderr
    module, manifest, boards, names = probe.stdout.splitlines()
    site = installed.site.resolve()
    for path in (module, manifest, boards):
        assert Path(path).resolve().is_relative_to(site), f"{path} is not from the wheel in {site}"
    assert Path(manifest).is_file()
    assert names.split(",") == sorted(p.stem for p in (DATA / "boards").glob("*.toml"))


def test_models_list_reads_the_packaged_manifest(installed: Installed) -> None:
    result = installed.run("-m", "edge_voice", "models", "list")
    assert "Traceback" not in result.stderr, result.stderr
    listed = _listed(result.stdout)
    assert set(listed) == _manifest_names()
    assert {"silero-vad", "piper-joe"} <= set(listed)
    # exit status agrees with the rows (0 only when every model verifies; 78 names the bad ones)
    assert result.returncode == (0 if set(listed.values()) <= {"ok", "opt"} else 78), result.stderr


def test_doctor_reads_the_packaged_board_profile(installed: Installed) -> None:
    result = installed.run("-m", "edge_voice", "--config", str(_config(installed)), "doctor")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr  # 1: something on this box needs fixing
    lines = result.stdout.splitlines()
    for name in _manifest_names():
        assert _verdict(lines, f"model {name}"), f"no verdict for model {name}:\n{result.stdout}"
    profile = _board_profile()
    board = _verdict(lines, "gpio board")
    assert board.startswith("ok ") and f"{BOARD}: {profile['profile']['name']}" in board
    # gpio is enabled and its pins come from the profile's [gpio] table, not from the user's config
    led_pins = profile["gpio"]["led_pins"]
    assert isinstance(led_pins, list) and led_pins
    led = _verdict(lines, "gpio led pin")
    assert led.startswith("ok ") and f"GPIO{led_pins[0]}:" in led


@pytest.mark.engines
def test_every_model_verifies_from_the_installed_package(installed: Installed) -> None:
    result = installed.run("-m", "edge_voice", "models", "list")
    assert result.returncode == 0, result.stderr
    assert set(_listed(result.stdout).values()) <= {"ok", "opt"}
    verify = installed.run("-m", "edge_voice", "models", "verify", "--quiet")
    assert verify.returncode == 0 and not verify.stdout, verify.stderr
