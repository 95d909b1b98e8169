"""Issue 19, item 5: every unusable model is one clear line and exit 78 (systemd does not restart-loop);
custom model files are hashed by ``models verify`` and ``doctor`` so a user can pin them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_voice.audio import clips
from edge_voice.audio.wavio import write_wav
from edge_voice.models import registry

CORRUPT = b"\x08\x07not a model at all" * 300


def edge_voice(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_voice", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )


def corrupt_voice(tmp_path: Path) -> Path:
    voice = tmp_path / "custom-voice.onnx"
    voice.write_bytes(CORRUPT)
    shutil.copyfile(registry.resolve("piper-joe-config"), f"{voice}.json")  # a valid config beside it
    return voice


def assert_one_line_78(r: subprocess.CompletedProcess[str], path: Path, what: str) -> None:
    assert r.returncode == 78, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("edge-voice: ") and str(path) in last and what in last, last


def test_a_corrupt_custom_voice_exits_78_with_one_line(tmp_path: Path) -> None:
    voice = corrupt_voice(tmp_path)
    r = edge_voice(
        ["say", "Hello.", "--output", str(tmp_path / "o.wav")],
        {"EDGE_VOICE_TTS__VOICE": str(voice)},
        tmp_path,
    )
    assert_one_line_78(r, voice, "not a usable ONNX model")


@pytest.mark.parametrize("content", [CORRUPT, b""])
def test_a_corrupt_custom_wake_model_exits_78_with_one_line(content: bytes, tmp_path: Path) -> None:
    head = tmp_path / "hey_bob.tflite"
    head.write_bytes(content)
    wav = tmp_path / "in.wav"
    write_wav(wav, clips.silence(500))
    r = edge_voice(
        ["run", "--input", str(wav), "--output", str(tmp_path / "o.wav")],
        {"EDGE_VOICE_WAKE__CUSTOM_MODELS": f'["{head}"]'},
        tmp_path,
    )
    assert_one_line_78(r, head, "not a usable .tflite model")


def test_custom_models_are_hashed_by_models_verify(tmp_path: Path) -> None:
    voice = corrupt_voice(tmp_path)
    head = tmp_path / "hey_bob.tflite"
    head.write_bytes(b"head bytes")
    env = {"EDGE_VOICE_TTS__VOICE": str(voice), "EDGE_VOICE_WAKE__CUSTOM_MODELS": f'["{head}"]'}
    r = edge_voice(["models", "verify"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    for path in (voice, head, Path(f"{voice}.json")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"{path} sha256 {digest}" in r.stdout, r.stdout
    head.unlink()
    r = edge_voice(["models", "verify"], env, tmp_path)
    assert r.returncode == 78 and str(head) in r.stderr


def test_doctor_hashes_custom_models(tmp_path: Path) -> None:
    from edge_voice.cli.doctor import _models
    from edge_voice.core.config import from_mapping

    voice = corrupt_voice(tmp_path)
    cfg = from_mapping({"tts": {"voice": str(voice)}})
    lines = {line.name: line for line in _models(cfg)}
    digest = hashlib.sha256(voice.read_bytes()).hexdigest()
    assert lines["model tts.voice"].ok and digest in lines["model tts.voice"].detail


def _truncated(name: str, keep: int, tmp_path: Path, suffix: str) -> Path:
    """The first ``keep`` bytes of a real model: a half-copied download."""
    path = tmp_path / f"custom{suffix}"
    with registry.resolve(name).open("rb") as f:
        path.write_bytes(f.read(keep))
    return path


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated"])
def test_a_corrupt_custom_whisper_model_exits_78_with_one_line(kind: str, tmp_path: Path) -> None:
    """A truncated ggml .bin used to load and then kill the daemon with SIGSEGV (exit 139, a systemd
    restart loop) at the warm-up decode; now it is refused before whisper.cpp opens it."""
    if kind == "truncated":
        model = _truncated("whisper-tiny.en-q8_0", 1_000_000, tmp_path, ".bin")
    else:
        model = tmp_path / "custom.bin"
        model.write_bytes(CORRUPT if kind == "garbage" else b"")
    wav = tmp_path / "in.wav"
    write_wav(wav, clips.silence(500))
    r = edge_voice(
        ["run", "--no-mqtt", "--input", str(wav), "--output", str(tmp_path / "o.wav")],
        {"EDGE_VOICE_ASR__MODEL": str(model)},
        tmp_path,
    )
    assert_one_line_78(r, model, "whisper.cpp ggml file")


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_a_corrupt_custom_llm_model_exits_78_with_one_line(kind: str, tmp_path: Path) -> None:
    if kind == "truncated":
        model = _truncated("smollm2-135m", 2_000_000, tmp_path, ".gguf")
    else:
        model = tmp_path / "custom.gguf"
        model.write_bytes(CORRUPT)
    r = edge_voice(
        ["ask", "--quiet", "What is the largest planet?"], {"EDGE_VOICE_LLM__MODEL": str(model)}, tmp_path
    )
    assert_one_line_78(r, model, "llama.cpp could not load")
