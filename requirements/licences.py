"""List every package installed in this Python environment with its licence, and fail on one that nobody
reviewed. `make licences` (part of `make check`) runs it in the project's venv; run it with the service's
venv on a device to see what is installed there:
``/opt/edge-voice/.venv/bin/python /opt/edge-voice/requirements/licences.py``.

The reviewed licences are in requirements/licences.toml: for each package, the SPDX expression a person
checked, and what the package's metadata declared at that review (``"declared@<version>"``: what one
version declares when the locks pin two, e.g. one for Python 3.11 and a newer one for 3.13). Exit 1 when
an installed package has no entry, or when its metadata now declares something else (a new version
changed its licence); exit 0 otherwise, after the list and a summary of the copyleft and non-commercial
parts of what is installed.
Standard library only: it must run in the service's venv, which has no dev tools.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

REVIEWED = Path(__file__).with_name("licences.toml")
COPYLEFT = re.compile(r"\b(A?GPL|LGPL|MPL|EPL|CC-BY-NC|CC-BY-SA|CC-BY-NC-SA)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(meta: md.PackageMetadata) -> str:
    """What a package's metadata says its licence is: the SPDX License-Expression (PEP 639), else a short
    License field, else its License classifiers, else the first line of a License text, else UNKNOWN."""
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 100:
        return text
    classifiers = [
        c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    if classifiers:
        return "classifier: " + "; ".join(classifiers)
    if text:
        return "text: " + text.splitlines()[0].strip()[:80]
    return "UNKNOWN"


def installed() -> dict[str, tuple[str, str]]:
    """canonical name → (version, declared licence) of every distribution on sys.path."""
    out: dict[str, tuple[str, str]] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            out.setdefault(canonical(name), (dist.version, declared(dist.metadata)))
    return out


def flagged(entry: dict[str, str]) -> bool:
    """Copyleft, or data for non-commercial use only: what a distributor of the whole has to look at."""
    return bool(COPYLEFT.search(entry["licence"])) or "non-commercial" in entry.get("note", "")


def check(
    found: dict[str, tuple[str, str]], reviewed: dict[str, dict[str, str]]
) -> tuple[list[str], list[str]]:
    """(table lines, problems) for the installed packages against the reviewed entries."""
    lines, problems = [], []
    for name in sorted(found):
        version, says = found[name]
        entry = reviewed.get(name)
        if entry is None:
            problems.append(f"{name} {version}: not reviewed (metadata: {says}); add it to {REVIEWED.name}")
            continue
        # one name, two versions in the locks (a newer one for newer Pythons): each reviewed on its own
        expected = entry.get(f"declared@{version}", entry["declared"])
        if expected != says:
            problems.append(
                f"{name} {version}: metadata now declares {says!r}, reviewed as {expected!r} "
                f"({entry['licence']}): review it again"
            )
        mark = "!" if flagged(entry) else " "
        lines.append(f"{mark} {name:<30} {version:<24} {entry['licence']:<40} {entry['venv']}")
    return lines, problems


def main(argv: list[str]) -> int:
    reviewed = tomllib.loads(REVIEWED.read_text(encoding="utf-8"))
    found = installed()
    lines, problems = check(found, reviewed)
    if "--quiet" not in argv:
        print(f"  {'package':<30} {'version':<24} {'licence (reviewed)':<40} venv")
        print("\n".join(lines))
        notes = [
            f"  {n}: {reviewed[n].get('note', reviewed[n]['licence'])}"
            for n in sorted(found)
            if n in reviewed and flagged(reviewed[n])
        ]
        if notes:
            print("\n! copyleft or non-commercial, installed here:")
            print("\n".join(notes))
    for problem in problems:
        print(f"licences: {problem}", file=sys.stderr)
    print(
        f"licences: {len(found)} packages installed, {len(problems)} unreviewed or changed", file=sys.stderr
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
