"""``edge-voice bench echo``: barge-in over the device's own voice, and no self-wakes.

Every scene is streamed through the daemon's own echo path, frame by frame: the reply is "played" into a
``PlaybackReference`` the way ``ReferencedSink`` does (a device buffer ahead of the capture), the
``RoomSource`` echoes it into the microphone, the ``CancelledSource`` cancels it (or not), the
``Listener`` (openWakeWord + Silero + endpointer) listens, the self-wake guard filters, and whisper.cpp
transcribes the utterance. On a barge-in the reply stops being written, as the playback thread stops:
what was already in the device buffer still plays (``stop_ms`` = wake detected → last sample played).

* 36 barge-in scenes: wake word + command spoken over a reply, 6 voices (espeak-ng en-us/en-gb/female/
  male-3, Piper at two speeds), echo-to-speech ratios −5/0/+5 dB, delays 20–120 ms, seeded rooms.
  Each once with cancellation and once without, in the same run; and the command alone in silence,
  for the WER it should have.
* 10 replies that contain the wake word, echoed at −5…+10 dB, no user: self-wakes with cancellation and
  guard (the daemon's default), cancellation only, and neither.
* ERLE (echo return loss enhancement) over the self-wake replies, and the canceller's CPU per 10 ms frame
  (thread CPU time).

The echo-to-speech ratio is the echo's RMS over the user's speech span against the user's speech RMS.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.audio.echo import (
    AEC_FRAME,
    CancelledSource,
    PlaybackReference,
    Room,
    RoomEcho,
    RoomSource,
    WebRtcCanceller,
)
from edge_voice.audio.sources import SourceExhausted, WavSource
from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, AudioFrame, Pcm, SpeechStopped, WakeDetected

log = logging.getLogger(__name__)

BLOCK = 512  # the daemon's capture block (audio.frame_ms = 32)
AHEAD = 40 * SAMPLE_RATE // 1000  # the device buffer: playback runs this far ahead of the capture
CHUNK = 20 * SAMPLE_RATE // 1000  # audio.output_chunk_ms
REPLY_AT = SAMPLE_RATE  # the reply starts 1 s into every scene
RATIOS = (-5, 0, 5)
DELAYS = (20, 45, 70, 95, 120)
VOICES = ("espeak:en-us", "espeak:en-gb", "espeak:en-us+f3", "espeak:en-gb+m3", "piper:1.0", "piper:1.2")
COMMANDS = (
    "what time is it",
    "turn on the kitchen light",
    "set a timer for five minutes",
    "turn off the bedroom lamp",
    "what is the weather tomorrow",
    "set the volume to forty",
)
REPLIES = (
    "The weather today will be mostly sunny with a high of twenty two degrees. Tonight it gets cooler, "
    "and tomorrow there may be some rain in the afternoon, so take an umbrella with you.",
    "Here is a short story. Once upon a time a small robot lived in a lighthouse by the sea. Every night "
    "it counted the ships, and every morning it wrote their names in a large blue book.",
    "Paris is the capital of France. It lies on the river Seine and has more than two million people. "
    "It is known for its museums, its cafes and the tower built for the world fair of eighteen eighty nine.",
)
WAKE_REPLIES = (
    "My name is Jarvis. To wake me, say hey Jarvis, and then your question.",
    "You said: hey Jarvis, turn on the lights. The lights are on.",
    "Hey Jarvis is my wake word. I am listening whenever you need me.",
    "Sure. Hey Jarvis, what time is it? It is ten past nine.",
    "I heard hey Jarvis twice. Say it once, then wait for the tone.",
    "Try saying hey Jarvis, set a timer for five minutes.",
    "The wake word is hey Jarvis. Other words will not wake me.",
    "Okay, hey Jarvis it is. Hey Jarvis, hey Jarvis.",
    "When you say hey Jarvis I stop talking and listen to you.",
    "Hey Jarvis. That is what you say to talk to me.",
)
WAKE_GAINS = (-5.0, 0.0, 5.0, 10.0)


def _speech(text: str, voice: str) -> Pcm:
    from edge_voice.audio import clips

    engine, arg = voice.split(":", 1)
    pcm = clips.piper_speech(text, float(arg)) if engine == "piper" else clips.espeak_speech(text, arg)
    a, b = clips.voiced_bounds(pcm)
    return pcm[a:b]


def _rms(x: Pcm | np.ndarray) -> float:
    return math.sqrt(float(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-9)


def _scale(pcm: Pcm, gain: float) -> Pcm:
    out: Pcm = np.clip(np.round(pcm.astype(np.float64) * gain), -32768, 32767).astype(np.int16)
    return out


class _Engines:
    def __init__(self, cfg: Config) -> None:
        from edge_voice.engines.asr import WhisperCppTranscriber, asr_prompt
        from edge_voice.listen.vad import SileroVad
        from edge_voice.listen.wake import OpenWakeWordDetector

        self.cfg = cfg
        self.wake = OpenWakeWordDetector(cfg.wake)
        self.guard_wake = OpenWakeWordDetector(cfg.wake)
        self.vad = SileroVad(cfg.vad)
        # a loaded shared box is slower than the device: the decode limit must not turn into word errors
        asr_cfg = replace(cfg.asr, max_decode_ms=60000)
        self.asr = WhisperCppTranscriber(asr_cfg, cfg.models_path, prompt=asr_prompt(cfg))


def stream_scene(
    eng: _Engines, near: Pcm, reply: Pcm, room: Room, aec: bool, guard: bool, barge_in: bool = True
) -> dict[str, Any]:
    """One scene through the echo path and the listener. ``reply`` (16 kHz) starts at ``REPLY_AT``."""
    from edge_voice.listen.echo_guard import EchoGuard
    from edge_voice.listen.listener import Listener

    ref = PlaybackReference(capacity_s=len(near) / SAMPLE_RATE + 4)
    canceller = WebRtcCanceller(eng.cfg.audio.echo_delay_ms) if aec else None
    eng.guard_wake.reset()
    g = EchoGuard(eng.guard_wake, eng.cfg.wake.threshold) if guard else None
    src = CancelledSource(
        RoomSource(WavSource(near, pace="fast"), ref, room), ref, canceller, tap=g.hear if g else None
    )
    eng.wake.reset()
    eng.vad.reset()
    listener = Listener(eng.cfg, eng.wake, eng.vad)
    played = REPLY_AT  # next reply sample to write, on the input clock
    reply_end = REPLY_AT + len(reply)
    stopped_at: int | None = None
    wakes: list[int] = []
    suppressed: list[int] = []
    utterances: list[tuple[int, Pcm]] = []
    out_parts: list[Pcm] = []
    pos = 0
    while True:
        # the playback thread keeps the device buffer full, in output chunks, until stopped
        while stopped_at is None and played < reply_end and played < pos + BLOCK + AHEAD:
            n = min(CHUNK, reply_end - played)
            ref.write(played, reply[played - REPLY_AT : played - REPLY_AT + n])
            played += n
        try:
            block = src.read(BLOCK)
        except SourceExhausted:
            break
        out_parts.append(block)
        for ev in listener.feed(AudioFrame(block, pos, 0)):
            if isinstance(ev, WakeDetected):
                if g is not None and g.is_echo(ev):
                    suppressed.append(ev.at_sample)
                    continue
                wakes.append(ev.at_sample)
                if barge_in and stopped_at is None and REPLY_AT <= ev.at_sample < played:
                    stopped_at = ev.at_sample  # what is in the device buffer (up to ``played``) still plays
            elif isinstance(ev, SpeechStopped):
                utterances.append((ev.speech_start_sample, ev.audio))
        pos += len(block)
    last_played = played if stopped_at is not None else reply_end
    return {
        "wakes": wakes,
        "suppressed": suppressed,
        "stopped_at": stopped_at,
        "stop_ms": None if stopped_at is None else (last_played - stopped_at) * 1000 / SAMPLE_RATE,
        "utterances": utterances,
        "out": np.concatenate(out_parts) if out_parts else np.zeros(0, np.int16),
        "cpu_ns": src.cpu_ns,
        "frames": src.frames,
    }


def _transcribe(eng: _Engines, utterances: list[tuple[int, Pcm]], after: int) -> str:
    texts = [eng.asr.decode(a).text for s, a in utterances if s >= after - SAMPLE_RATE // 2]
    return " ".join(t for t in texts if t).strip()


def barge_in_scenes(n_per_ratio: int = 12) -> list[dict[str, Any]]:
    """The scene plan (deterministic): voice, command, reply, ratio, delay, when the user speaks."""
    scenes = []
    for r_i, ratio in enumerate(RATIOS):
        for k in range(n_per_ratio):
            i = r_i * n_per_ratio + k
            scenes.append(
                {
                    "id": i,
                    "ratio_db": ratio,
                    "delay_ms": DELAYS[i % len(DELAYS)],
                    "voice": VOICES[k % len(VOICES)],
                    "command": COMMANDS[(k + r_i) % len(COMMANDS)],
                    "reply": k % len(REPLIES),
                    "user_at_s": 2.0 + 0.37 * (k % 5),  # 1.0–2.5 s into the reply
                    "seed": 100 + i,
                }
            )
    return scenes


def run_barge_in(eng: _Engines, scene: dict[str, Any], replies: list[Pcm]) -> dict[str, Any]:
    from edge_voice.bench.asr import wer

    voice = scene["voice"]
    wake_pcm = _speech("hey jarvis", voice)
    cmd_pcm = _speech(scene["command"], voice)
    gap = np.zeros(SAMPLE_RATE * 3 // 10, np.int16)  # a natural pause after the wake word
    user = np.concatenate([wake_pcm, gap, cmd_pcm])
    reply = replies[scene["reply"]]
    at = int(scene["user_at_s"] * SAMPLE_RATE)
    total = REPLY_AT + len(reply) + 3 * SAMPLE_RATE
    room = Room(delay_ms=scene["delay_ms"], seed=scene["seed"])
    # the echo over the user's span (full reply, no user) sets the user's level for the ratio
    echo = RoomEcho(replace(room, noise_dbfs=-120))
    far = np.zeros(total, np.int16)
    far[REPLY_AT : REPLY_AT + len(reply)] = reply

    def reference(s: int, n: int) -> Pcm:
        out = np.zeros(n, np.int16)
        lo, hi = max(0, s), min(total, s + n)
        if hi > lo:
            out[lo - s : hi - s] = far[lo:hi]
        return out

    e = echo.echo(reference, at, len(user))
    voiced = np.abs(user) > 300
    gain = _rms(e[voiced]) / _rms(user[voiced]) * 10 ** (-scene["ratio_db"] / 20)
    near = np.zeros(total, np.int16)
    near[at : at + len(user)] = _scale(user, gain)
    cmd_at = at + len(wake_pcm)
    row: dict[str, Any] = {k: scene[k] for k in ("id", "ratio_db", "delay_ms", "voice", "command")}
    for name, aec in (("aec", True), ("no_aec", False)):
        res = stream_scene(eng, near, reply, room, aec=aec, guard=aec)
        hit = [w for w in res["wakes"] if at <= w <= at + len(wake_pcm) + SAMPLE_RATE]
        row[f"barge_in_{name}"] = bool(hit)
        row[f"stop_ms_{name}"] = res["stop_ms"] if hit else None
        text = _transcribe(eng, res["utterances"], cmd_at) if hit else ""
        row[f"transcript_{name}"] = text
        row[f"wer_{name}"] = wer([scene["command"]], [text]) if hit else None
        row[f"false_wakes_{name}"] = len([w for w in res["wakes"] if not at <= w <= cmd_at + SAMPLE_RATE])
        if aec:
            row["cpu_ns"], row["frames"] = res["cpu_ns"], res["frames"]
    # the same command, same level, in a silent room: what "as well as in silence" means
    quiet = stream_scene(eng, near, np.zeros(0, np.int16), Room(seed=scene["seed"]), aec=False, guard=False)
    text = _transcribe(eng, quiet["utterances"], cmd_at) if quiet["wakes"] else ""
    row["wer_silence"] = wer([scene["command"]], [text])
    row["transcript_silence"] = text
    return row


def run_self_wake(eng: _Engines, i: int, text: str) -> dict[str, Any]:
    reply = _speech(text, "piper:1.0")
    total = REPLY_AT + len(reply) + 2 * SAMPLE_RATE
    near = np.zeros(total, np.int16)
    room = Room(delay_ms=DELAYS[i % len(DELAYS)], echo_gain_db=WAKE_GAINS[i % len(WAKE_GAINS)], seed=200 + i)
    row: dict[str, Any] = {"id": i, "text": text, "echo_gain_db": room.echo_gain_db, "delay_ms": room.delay_ms}
    for name, aec, guard in (("aec", True, True), ("aec_no_guard", True, False), ("no_aec", False, False)):
        res = stream_scene(eng, near, reply, room, aec=aec, guard=guard, barge_in=False)
        row[f"self_wakes_{name}"] = len(res["wakes"])
        row[f"guard_suppressed_{name}"] = len(res["suppressed"])
        if name == "aec_no_guard":
            raw = stream_scene(eng, near, reply, room, aec=False, guard=False, barge_in=False)["out"]
            span = slice(REPLY_AT + SAMPLE_RATE // 2, REPLY_AT + len(reply))  # after 0.5 s to converge
            row["erle_db"] = round(20 * math.log10(_rms(raw[span]) / _rms(res["out"][span])), 1)
            row["cpu_ns"], row["frames"] = res["cpu_ns"], res["frames"]
    return row


def _mean(xs: list[float]) -> float | None:
    return round(float(np.mean(xs)), 4) if xs else None


def summarize(bi: list[dict[str, Any]], sw: list[dict[str, Any]]) -> dict[str, Any]:
    from edge_voice.bench.asr import wer

    def rate(rows: list[dict[str, Any]], key: str) -> float:
        return round(sum(bool(r[key]) for r in rows) / max(1, len(rows)), 3)

    def cwer(rows: list[dict[str, Any]], name: str) -> float | None:
        hit = [r for r in rows if r[f"barge_in_{name}"]]
        if not hit:
            return None
        return round(wer([r["command"] for r in hit], [r[f"transcript_{name}"] for r in hit]), 3)

    per_ratio: dict[str, Any] = {}
    for ratio in RATIOS:
        rows = [r for r in bi if r["ratio_db"] == ratio]
        per_ratio[f"{ratio:+d}dB" if ratio else "0dB"] = {
            "scenes": len(rows),
            "barge_in_rate_aec": rate(rows, "barge_in_aec"),
            "barge_in_rate_no_aec": rate(rows, "barge_in_no_aec"),
            "command_wer_aec": cwer(rows, "aec"),
            "command_wer_no_aec": cwer(rows, "no_aec"),
            "command_wer_silence": round(
                wer([r["command"] for r in rows], [r["transcript_silence"] for r in rows]), 3
            ),
            "stop_ms_max_aec": max([r["stop_ms_aec"] for r in rows if r["stop_ms_aec"] is not None], default=None),
        }
    cpu_ns = sum(r["cpu_ns"] for r in bi + sw)
    frames = sum(r["frames"] for r in bi + sw)
    per_frame_ms = cpu_ns / max(1, frames) / 1e6
    zero = per_ratio["0dB"]
    return {
        "barge_in_rate_aec": zero["barge_in_rate_aec"],
        "barge_in_rate_no_aec": zero["barge_in_rate_no_aec"],
        "self_wakes_aec": sum(r["self_wakes_aec"] for r in sw),
        "command_wer_aec": zero["command_wer_aec"],
        "command_wer_no_aec": zero["command_wer_no_aec"],
        "command_wer_silence": zero["command_wer_silence"],
        "self_wakes_aec_no_guard": sum(r["self_wakes_aec_no_guard"] for r in sw),
        "self_wakes_no_aec": sum(r["self_wakes_no_aec"] for r in sw),
        "self_wake_replies": len(sw),
        "guard_suppressed_aec": sum(r["guard_suppressed_aec"] for r in sw),
        "erle_db_mean": _mean([r["erle_db"] for r in sw]),
        "erle_db_min": min(r["erle_db"] for r in sw) if sw else None,
        "aec_cpu_ms_per_10ms_frame": round(per_frame_ms, 4),
        "aec_core_pct": round(per_frame_ms / 10 * 100, 2),
        "stop_ms_max_aec": max([r["stop_ms_aec"] for r in bi if r["stop_ms_aec"] is not None], default=None),
        "false_wakes_aec": sum(r["false_wakes_aec"] for r in bi),
        "false_wakes_no_aec": sum(r["false_wakes_no_aec"] for r in bi),
        "barge_in_scenes": len(bi),
        "per_ratio": per_ratio,
    }


def _plot(summary: dict[str, Any], sw: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4.2))
    labels = list(summary["per_ratio"])
    x = np.arange(len(labels))
    pr = summary["per_ratio"]
    ax1.bar(x - 0.2, [pr[k]["barge_in_rate_aec"] for k in labels], 0.4, label="with cancellation")
    ax1.bar(x + 0.2, [pr[k]["barge_in_rate_no_aec"] for k in labels], 0.4, label="without")
    ax1.set_xticks(x, labels)
    ax1.set_xlabel("echo-to-speech ratio")
    ax1.set_ylabel("barge-ins detected")
    ax1.set_ylim(0, 1.05)
    ax1.axhline(0.95, color="grey", ls=":", lw=1)
    ax1.legend(fontsize=8)
    ax1.set_title("wake word over the device's reply")

    def w(v: float | None) -> float:
        return float("nan") if v is None else v

    ax2.plot(x, [w(pr[k]["command_wer_aec"]) for k in labels], "o-", label="after barge-in, cancelled")
    ax2.plot(x, [w(pr[k]["command_wer_no_aec"]) for k in labels], "s--", label="after barge-in, raw")
    ax2.plot(x, [w(pr[k]["command_wer_silence"]) for k in labels], "^:", label="same command in silence")
    ax2.set_xticks(x, labels)
    ax2.set_xlabel("echo-to-speech ratio")
    ax2.set_ylabel("command WER")
    ax2.axhline(0.10, color="grey", ls=":", lw=1)
    ax2.legend(fontsize=8)
    ax2.set_title("the command after the wake word")

    names = ["no_aec", "aec_no_guard", "aec"]
    ax3.bar(range(3), [sum(r[f"self_wakes_{n}"] for r in sw) for n in names], color=["C3", "C1", "C2"])
    ax3.set_xticks(range(3), ["no cancellation", "cancellation", "cancellation\n+ guard"])
    ax3.set_ylabel(f"self-wakes over {len(sw)} replies saying the wake word")
    ax3.set_title(
        f"ERLE {summary['erle_db_mean']} dB, AEC {summary['aec_cpu_ms_per_10ms_frame']} ms CPU / 10 ms"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(
    cfg: Config, out_dir: Path, scenes_per_ratio: int = 12, wake_replies: int = 10, **_: Any
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    eng = _Engines(cfg)
    replies = [_speech(r, "piper:1.0") for r in REPLIES]
    bi = []
    for scene in barge_in_scenes(scenes_per_ratio):
        row = run_barge_in(eng, scene, replies)
        log.info("barge-in %s", row)
        bi.append(row)
    sw = [run_self_wake(eng, i, text) for i, text in enumerate(WAKE_REPLIES[:wake_replies])]
    summary = summarize(bi, sw)
    summary["targets"] = {
        "barge_in_rate_aec": ">= 0.95",
        "self_wakes_aec": "0",
        "command_wer_aec": "<= 0.10",
        "aec_core_pct": "<= 10",
    }
    summary["canceller"] = "webrtc-aec3 (pywebrtc-audio 0.2.0)"
    summary["note"] = "CPU is thread CPU time on a shared 2-core x86_64 box under load from other jobs"
    summary["seconds"] = round(time.perf_counter() - t, 1)
    result = {"summary": summary, "barge_in": bi, "self_wake": sw}
    (out_dir / "echo.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    _plot(summary, sw, out_dir / "echo.png")
    return summary


__all__ = ["AEC_FRAME", "run", "stream_scene"]
