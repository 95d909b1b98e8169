"""Issue 8: the process as systemd sees it — `edge-voice run` in a subprocess with real engines.

SIGTERM during a reply shuts down cleanly (availability ``offline``, exit 0); SIGHUP reloads a valid
config and keeps the old one (with an error event) when the new one is bad; a missing or altered model
file stops start-up with exit 78, naming the file and the command that fixes it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_voice.audio import clips
from edge_voice.audio.wavio import write_wav
from edge_voice.models.registry import default_models_dir, load_manifest
from tests.conftest import wait_until
from tests.integration.conftest import Broker, Subscriber

pytestmark = pytest.mark.engines

DEVICE = "lifecycle"


def rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def types(path: Path) -> list[str]:
    return [r["type"] for r in rows(path)]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def start(
    procs: list[subprocess.Popen[str]], tmp_path: Path, wav: Path, env: dict[str, str], *args: str
) -> tuple[subprocess.Popen[str], Path]:
    events = tmp_path / "events.jsonl"
    cmd = [sys.executable, "-m", "edge_voice", *args, "run", "--input", str(wav), "--events", str(events)]
    cmd += ["--output", str(tmp_path / "reply.wav")]
    p = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "stderr.txt", "w"),  # noqa: SIM115 - closed with the process
        text=True,
    )
    procs.append(p)
    return p, events


def test_sigterm_during_a_reply_shuts_down_cleanly(
    mosquitto: Broker, daemon: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    prefix = f"edge-voice/{DEVICE}"
    sub = Subscriber(mosquitto.port, [f"{prefix}/availability"])
    clip = clips.compose(
        [
            ("lead", clips.silence(1500)),
            ("wake", clips.piper_speech("Hey Jarvis,")),
            ("gap", clips.silence(150)),
            ("cmd", clips.piper_speech("tell me a long story about a dragon.")),
            ("tail", clips.silence(20000)),
        ]
    )
    wav = tmp_path / "in.wav"
    write_wav(wav, clip.pcm)
    env = {
        "EDGE_VOICE_DEVICE_ID": DEVICE,
        "EDGE_VOICE_MQTT__ENABLED": "true",
        "EDGE_VOICE_MQTT__HOST": "127.0.0.1",
        "EDGE_VOICE_MQTT__PORT": str(mosquitto.port),
        "EDGE_VOICE_LLM__MAX_TOKENS": "200",  # a reply long enough to be interrupted
    }
    try:
        proc, events = start(daemon, tmp_path, wav, env)  # real-time pacing: the reply really plays
        wait_until(lambda: "response.audio.started" in types(events) or proc.poll() is not None, 180, "reply")
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
        assert [m.payload for m in sub.on(f"{prefix}/availability")][-1:] == [b"online"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "stderr.txt").read_text()[-2000:]
        wait_until(lambda: sub.on(f"{prefix}/availability")[-1].payload == b"offline", 15, "offline")
    finally:
        sub.close()
    seen = types(events)
    assert seen.index("response.audio.started") < seen.index("turn.cancelled")
    cancelled = next(r for r in rows(events) if r["type"] == "turn.cancelled")
    assert cancelled["reason"] == "cancel:shutdown"
    done = [r for r in rows(events) if r["type"] == "response.done"]
    assert done and done[-1]["status"] == "interrupted"


def test_sighup_reloads_a_valid_config_and_keeps_the_old_one_when_bad(
    daemon: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text("[conversation]\nfollow_up_window_ms = 5000\n")
    wav = tmp_path / "quiet.wav"
    write_wav(wav, clips.silence(120_000))
    proc, events = start(daemon, tmp_path, wav, {}, "--config", str(conf))
    stderr = tmp_path / "stderr.txt"
    wait_until(lambda: "ready" in stderr.read_text() or proc.poll() is not None, 180, "daemon ready")
    assert proc.poll() is None, stderr.read_text()[-2000:]

    conf.write_text("[conversation]\nfollow_up_window_ms = 1000\n[asr]\nthreads = 1\n")
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "config.reloaded" in types(events), 30, "config.reloaded")

    conf.write_text("[conversation]\nfollow_up_window_ms = 1000\nbogus = 1\n")
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "error" in types(events), 30, "reload error")
    assert proc.poll() is None, "a bad reload must not stop the daemon"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, stderr.read_text()[-2000:]
    (reloaded,) = [r for r in rows(events) if r["type"] == "config.reloaded"]
    assert reloaded["applied"] == ["conversation.follow_up_window_ms"]
    assert reloaded["restart_required"] == ["asr.threads"]
    (err,) = [r for r in rows(events) if r["type"] == "error"]
    assert err["code"] == "reload_failed" and err["key"] == "conversation.bogus"
    assert "conversation.bogus" in err["message"]


@pytest.mark.parametrize("damage", ["missing", "altered"])
def test_a_missing_or_altered_model_fails_start_up_with_78(damage: str, tmp_path: Path) -> None:
    entry = load_manifest()["whisper-tiny.en-q8_0"]
    models = tmp_path / "models"
    target = models / entry.path
    target.parent.mkdir(parents=True)
    if damage == "altered":
        shutil.copyfile(default_models_dir() / entry.path, target)
        with target.open("r+b") as f:  # one flipped byte deep inside the weights
            f.seek(target.stat().st_size // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xFF]))
    wav = tmp_path / "in.wav"
    write_wav(wav, clips.silence(1000))
    r = subprocess.run(
        [sys.executable, "-m", "edge_voice", "run", "--input", str(wav), "--output", str(tmp_path / "o.wav")],
        env={**os.environ, "EDGE_VOICE_MODELS_DIR": str(models)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 78, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert str(target) in last and "edge-voice models build" in last
    assert ("missing" if damage == "missing" else "checksum mismatch") in last
    assert "Traceback" not in r.stderr
