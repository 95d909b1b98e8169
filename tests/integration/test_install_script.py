"""``systemd/install.sh``, run for real as root into a staging directory (``DESTDIR``), from a copy of this
checkout owned by another user with group/world-writable files, as a careless checkout would be.

The installed tree must be root's and writable by root only (root's ``tar -x`` used to keep the checkout
owner's uid: that user could edit the code, the manifest's sha256 pins and the Makefile that the next
``make install`` runs as root), and its venv must hold exactly the hash-locked runtime, build and model
packages: no dev tools, nothing unlocked. This is also the fresh-venv test of the locked install
(``make setup`` from requirements/*.lock with ``--require-hashes``), so it needs the package index or
pip's cache, and a few minutes: marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_voice.models import registry
from tests.unit.test_locks import canonical, locked

REPO = Path(__file__).resolve().parents[2]
PREFIX = "/opt/edge-voice"
CHECKOUT_UID = 4242  # a user who is not root and owns the checkout
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venv-lock",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "out",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="install.sh runs as root"),
    pytest.mark.skipif(shutil.which("make") is None, reason="make is missing"),
]


@dataclass(frozen=True)
class Staged:
    stage: Path
    result: subprocess.CompletedProcess[str]

    @property
    def target(self) -> Path:
        return self.stage / PREFIX.lstrip("/")

    @property
    def cache(self) -> Path:
        return self.stage / "var/cache/edge-voice"


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Staged]:
    tmp = tmp_path_factory.mktemp("install-script")
    src, stage = tmp / "checkout", tmp / "stage"
    shutil.copytree(REPO, src, ignore=NOT_SOURCES, symlinks=True)
    (src / "edge_voice" / "data" / "manifest.toml").chmod(0o666)  # world-writable pins
    (src / "systemd").chmod(0o777)
    for root, dirs, files in os.walk(src):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), CHECKOUT_UID, CHECKOUT_UID)
    os.chown(src, CHECKOUT_UID, CHECKOUT_UID)
    # the derived models, copied with their stamps (mtimes kept) so `models build` only verifies them
    models = stage / "var/cache/edge-voice/models"
    shutil.copytree(registry.default_models_dir(), models, copy_function=shutil.copy2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGE_VOICE_", "VIRTUAL_ENV", "PYTHON"))}
    env |= {"DESTDIR": str(stage), "EDGE_VOICE_PREFIX": PREFIX}
    result = subprocess.run(
        ["bash", str(src / "systemd" / "install.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    yield Staged(stage, result)


def test_install_succeeds(staged: Staged) -> None:
    assert staged.result.returncode == 0, staged.result.stdout[-3000:] + staged.result.stderr[-3000:]
    assert "unit installed but not enabled" in staged.result.stdout  # DESTDIR: no systemctl


def test_the_installed_tree_is_root_owned_and_writable_by_root_only(staged: Staged) -> None:
    assert staged.result.returncode == 0
    bad = []
    for root, dirs, files in os.walk(staged.target):
        for name in [".", *dirs, *files]:
            path = os.path.join(root, name)
            st = os.lstat(path)
            writable = not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o022
            if st.st_uid != 0 or st.st_gid != 0 or writable:
                bad.append(f"{path} uid={st.st_uid} gid={st.st_gid} mode={stat.filemode(st.st_mode)}")
    assert not bad, f"{len(bad)} paths not root's alone, e.g. {bad[:5]}"
    assert (staged.target / "edge_voice" / "data" / "manifest.toml").is_file()
    assert not (staged.target / ".git").exists()


def test_the_service_venv_holds_exactly_the_locked_packages(staged: Staged) -> None:
    assert staged.result.returncode == 0
    py = staged.target / ".venv" / "bin" / "python"
    listing = subprocess.run(
        [str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    installed = {canonical(p["name"]): p["version"] for p in json.loads(listing.stdout)}
    expected: dict[str, str] = {}
    for name in ("build", "runtime", "models", "audio"):
        for key, (version, _, marker) in locked(REPO / "requirements" / f"{name}.lock").items():
            if "win32" not in marker and "python_full_version >= '3.12'" not in marker:  # this box
                expected[key] = version
    expected["edge-voice"] = installed.get("edge-voice", "missing")
    if "pyaudio" not in installed:  # optional: compiled only where portaudio19-dev is installed
        expected.pop("pyaudio")
    assert installed == expected
    for tool in ("pytest", "ruff", "mypy", "hypothesis"):
        assert not (staged.target / ".venv" / "bin" / tool).exists()


def test_the_staged_service_verifies_its_models_and_config(staged: Staged) -> None:
    assert staged.result.returncode == 0
    verify = subprocess.run(
        [str(staged.target / ".venv" / "bin" / "edge-voice"), "models", "verify", "--quiet"],
        env={**os.environ, "EDGE_VOICE_MODELS_DIR": str(staged.cache / "models")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    unit = staged.stage / "etc/systemd/system/edge-voice.service"
    assert f"ExecStart={PREFIX}/.venv/bin/edge-voice run" in unit.read_text()  # the final path, not DESTDIR
    conf = staged.stage / "etc/edge-voice"
    assert stat.S_IMODE((conf / "config.toml").stat().st_mode) == 0o640
    assert stat.S_IMODE((conf / "environment").stat().st_mode) == 0o600
