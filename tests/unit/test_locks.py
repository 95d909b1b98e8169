"""The hash-locked install: requirements/*.lock agree with the readable pins in requirements/*.txt (a pin
changed without `make lock` fails here), every locked package carries hashes, the locks that install
together agree on shared packages, and the Makefile installs them in hash-checking mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REQ = Path(__file__).resolve().parents[2] / "requirements"
MAKEFILE = REQ.parent / "Makefile"
# each lock: the service venv installs build, runtime, models, audio; `make test` adds dev; `make lock`, tools
LOCKED = ("build", "runtime", "models", "audio", "gpio-pi", "dev", "tools")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name → version of every `name==version` line (comments and options skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            out[canonical(m.group(1))] = m.group(2)
    return out


def locked(path: Path) -> dict[str, tuple[str, list[str], str]]:
    """name → (version, hashes, marker) of every requirement in a generated lock file."""
    out: dict[str, tuple[str, list[str], str]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line or line.startswith((" ", "#")):
            continue
        spec = line.partition(" --hash")[0]
        req, _, marker = spec.partition(";")
        name, _, version = req.strip().partition("==")
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        assert version and name, f"{path.name}: not an exact pin: {line[:80]}"
        # one version per line; a package at two versions must differ by marker (contourpy by Python)
        key = canonical(name) + (f"; {marker.strip()}" if canonical(name) in out else "")
        out[key] = (version.strip(), hashes, marker.strip())
    return out


@pytest.mark.parametrize("name", LOCKED)
def test_every_pin_is_in_its_lock_at_the_same_version(name: str) -> None:
    top, lock = pins(REQ / f"{name}.txt"), locked(REQ / f"{name}.lock")
    stale = {p: (v, lock.get(p, ("missing",))[0]) for p, v in top.items() if lock.get(p, ("",))[0] != v}
    assert not stale, f"requirements/{name}.lock is stale (pin, lock): {stale}; run `make lock`"


@pytest.mark.parametrize("name", LOCKED)
def test_every_locked_package_has_hashes(name: str) -> None:
    lock = locked(REQ / f"{name}.lock")
    assert lock
    assert not [p for p, (_, hashes, _) in lock.items() if not hashes]


def test_model_and_audio_locks_hold_only_their_pins() -> None:
    # installed --no-deps: a dependency in these locks would be a package nobody installs
    for name in ("models", "audio"):
        assert {p.split(";")[0] for p in locked(REQ / f"{name}.lock")} == set(pins(REQ / f"{name}.txt"))


def test_locks_installed_together_agree_on_shared_packages() -> None:
    runtime = locked(REQ / "runtime.lock")
    for name in ("build", "dev"):
        other = locked(REQ / f"{name}.lock")
        clash = {p: (runtime[p][0], v[0]) for p, v in other.items() if p in runtime and runtime[p][0] != v[0]}
        assert not clash, f"{name}.lock and runtime.lock disagree: {clash}"


def test_makefile_installs_every_lock_with_hashes_required() -> None:
    text = MAKEFILE.read_text()
    locked_pip = re.search(r"^PIP_LOCKED := (.*)$", text, re.M)
    assert locked_pip and "--require-hashes" in locked_pip.group(1) and "--no-deps" in locked_pip.group(1)
    installs = [line.strip() for line in text.splitlines() if re.search(r"-r requirements/\S+", line)]
    for line in installs:
        assert re.search(r"-r requirements/[\w-]+\.lock", line), f"installs an unlocked file: {line}"
        assert "PIP_LOCKED" in line or "--require-hashes" in line, f"no hash checking: {line}"
    assert {m for line in installs for m in re.findall(r"requirements/([\w-]+)\.lock", line)} == set(LOCKED)
