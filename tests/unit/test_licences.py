"""requirements/licences.py and its reviewed list: every locked package has a reviewed licence (a pin added
without a review fails here), the check fails on an unreviewed package or a changed licence, and the
statements the README makes about the installed combination hold in the list."""

from __future__ import annotations

import email.message
import importlib.util
import re
import sys
import tomllib
from types import ModuleType

from tests.unit.test_locks import LOCKED, REQ, locked

VENV_OF = {"build": "service", "runtime": "service", "models": "service", "audio": "service",
           "gpio-pi": "service", "dev": "dev", "tools": "lock"}  # fmt: skip


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("licences", REQ / "licences.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["licences"] = module
    spec.loader.exec_module(module)
    return module


LICENCES = _script()
REVIEWED: dict[str, dict[str, str]] = tomllib.loads((REQ / "licences.toml").read_text())


def _meta(**fields: str | list[str]) -> email.message.Message:
    meta = email.message.Message()
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            meta[key.replace("_", "-")] = v
    return meta


def test_every_locked_package_is_reviewed_and_nothing_else() -> None:
    where: dict[str, str] = {}
    for name in LOCKED:  # a package in the service's locks is a service package, whatever else has it
        for key in locked(REQ / f"{name}.lock"):
            package = key.split(";")[0]
            if where.get(package) != "service":
                where[package] = VENV_OF[name]
    where["edge-voice"] = "service"
    assert set(REVIEWED) == set(where), (
        f"unreviewed: {sorted(set(where) - set(REVIEWED))}; stale: {sorted(set(REVIEWED) - set(where))}"
    )
    assert {p: e["venv"] for p, e in REVIEWED.items()} == where
    for package, entry in REVIEWED.items():
        assert entry["licence"] and entry["declared"] != "UNKNOWN", package


def test_the_statements_in_the_readme_hold_in_the_list() -> None:
    assert REVIEWED["piper-tts"]["licence"] == "GPL-3.0-or-later"
    assert "espeak-ng" in REVIEWED["piper-tts"]["note"]
    assert "CC-BY-NC-SA-4.0" in REVIEWED["pyopen-wakeword"]["licence"]
    assert REVIEWED["edge-voice"]["licence"] == "Apache-2.0"
    assert (REQ.parent / "LICENSE").read_text().lstrip().startswith("Apache License")
    readme = (REQ.parent / "README.md").read_text()
    assert "GPL-3.0-or-later" in readme and "CC BY-NC-SA 4.0" in readme


def test_declared_reads_the_metadata_in_order() -> None:
    declared = LICENCES.declared
    assert declared(_meta(License_Expression="MIT", License="BSD")) == "MIT"
    assert declared(_meta(License="Apache 2.0")) == "Apache 2.0"
    long_text = "BSD 3-Clause License\n\nCopyright (c) ..."
    assert declared(_meta(License=long_text, Classifier="License :: OSI Approved :: BSD License")) == (
        "classifier: BSD License"
    )
    assert declared(_meta(License=long_text)) == "text: BSD 3-Clause License"
    assert declared(_meta()) == "UNKNOWN"


def test_the_check_fails_on_an_unreviewed_package_or_a_changed_licence() -> None:
    reviewed = {"a": {"venv": "service", "licence": "MIT", "declared": "MIT"}}
    lines, problems = LICENCES.check({"a": ("1.0", "MIT")}, reviewed)
    assert problems == [] and "MIT" in lines[0]
    _, problems = LICENCES.check({"a": ("1.0", "MIT"), "b": ("2.0", "UNKNOWN")}, reviewed)
    assert len(problems) == 1 and problems[0].startswith("b 2.0: not reviewed")
    _, problems = LICENCES.check({"a": ("1.1", "GPL-3.0-only")}, reviewed)
    assert len(problems) == 1 and "now declares 'GPL-3.0-only'" in problems[0]


def test_the_check_passes_in_this_environment_for_what_it_reviewed() -> None:
    """This venv's packages that are in the locks declare what was reviewed (a venv may hold more,
    e.g. another engineer's new pin before its review: `make licences` judges the whole venv)."""
    found = {n: v for n, v in LICENCES.installed().items() if n in REVIEWED}
    assert "numpy" in found
    _, problems = LICENCES.check(found, REVIEWED)
    assert problems == []


def test_a_version_reviewed_on_its_own_is_checked_against_its_own_entry() -> None:
    """The locks pin contourpy 1.3.3 for Python 3.11 and 1.4.0 for 3.13, whose metadata differ: each
    version is held to what it declared at its review, and any other version to the package's entry."""
    reviewed = {"a": {"venv": "dev", "licence": "BSD-3-Clause", "declared": "classifier: BSD License",
                      "declared@2.0": "BSD-3-Clause"}}  # fmt: skip
    assert LICENCES.check({"a": ("1.0", "classifier: BSD License")}, reviewed)[1] == []
    assert LICENCES.check({"a": ("2.0", "BSD-3-Clause")}, reviewed)[1] == []
    _, problems = LICENCES.check({"a": ("2.0", "classifier: BSD License")}, reviewed)
    assert len(problems) == 1 and "reviewed as 'BSD-3-Clause'" in problems[0]
    _, problems = LICENCES.check({"a": ("3.0", "BSD-3-Clause")}, reviewed)
    assert len(problems) == 1 and "reviewed as 'classifier: BSD License'" in problems[0]


def test_a_package_locked_at_two_versions_has_each_newer_version_reviewed() -> None:
    """A package the locks pin at several versions (by Python version) has a ``declared@<version>`` entry
    for every version but its oldest, and no such entry for a version no lock pins: a Python 3.13 venv's
    check then judges its own version, not the 3.11 one's review."""
    versions: dict[str, set[str]] = {}
    for name in LOCKED:
        for key, (version, _, _) in locked(REQ / f"{name}.lock").items():
            versions.setdefault(key.split(";")[0], set()).add(version)
    for package, entry in REVIEWED.items():
        pinned = versions.get(package, set())
        own = {k.removeprefix("declared@") for k in entry if k.startswith("declared@")}
        assert own <= pinned, f"{package}: reviewed versions {sorted(own - pinned)} are in no lock"
        newer = sorted(pinned, key=lambda v: tuple(int(p) for p in re.findall(r"\d+", v)))[1:]
        assert set(newer) <= own, f"{package}: locked at {sorted(pinned)}, no declared@ for {newer}"
