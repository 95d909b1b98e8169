"""``edge-voice``: run, listen, transcribe, say, demo, bench, models, doctor.

A bad config, a missing model or a missing audio device ends with one clear line and exit code 78
(EX_CONFIG), so systemd's ``RestartPreventExitStatus=78`` stops a restart loop.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from edge_voice.core.config import Config, ConfigError, load
from edge_voice.runtime import heap

EXIT_CONFIG = 78
MAX_QUESTION_CHARS = 1000  # a typed question longer than any spoken one is cut, not refused
log = logging.getLogger("edge_voice")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _progress(msg: str) -> None:
    print(f"edge-voice: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------- commands


def cmd_listen(cfg: Config, args: argparse.Namespace) -> int:
    """Print listening events (wake, speech start/stop) as JSON lines; optionally save utterances."""
    from edge_voice.audio.sources import AudioSource, MicSource, SourceExhausted, WavSource
    from edge_voice.audio.wavio import write_wav
    from edge_voice.core.messages import AudioFrame, SpeechStopped
    from edge_voice.listen.listener import Listener
    from edge_voice.listen.micro import wake_detector
    from edge_voice.listen.vad import SileroVad

    listener = Listener(cfg, wake_detector(cfg.wake), SileroVad(cfg.vad))
    block_samples = cfg.audio.frame_samples
    source: AudioSource = (
        WavSource(args.input, pace="realtime" if args.realtime else "fast")
        if args.input
        else MicSource(cfg.audio.input_device, block_samples)
    )
    save = Path(args.save_utterances) if args.save_utterances else None
    pos, n_utt = 0, 0
    try:
        while True:
            try:
                block = source.read(block_samples)
            except SourceExhausted:
                break
            frame = AudioFrame(block, pos, time.monotonic_ns())
            pos += len(block)
            for ev in listener.feed(frame):
                row: dict[str, Any] = {"type": _listen_type(ev), **_listen_fields(ev)}
                if isinstance(ev, SpeechStopped) and save is not None:
                    n_utt += 1
                    path = save / f"utterance-{n_utt:03d}.wav"
                    write_wav(path, ev.audio)
                    row["saved"] = str(path)
                print(json.dumps(row), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        source.close()
    return 0


def _listen_type(ev: object) -> str:
    return {
        "WakeDetected": "wake.detected",
        "SpeechStarted": "input_audio.speech_started",
        "SpeechPaused": "input_audio.speech_paused",
        "SpeechResumed": "input_audio.speech_resumed",
        "SpeechStopped": "input_audio.speech_stopped",
        "NoSpeech": "input_audio.no_speech",
    }[type(ev).__name__]


def _listen_fields(ev: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (
        "word",
        "score",
        "at_sample",
        "start_sample",
        "speech_start_sample",
        "last_voiced_sample",
        "reason",
    ):
        if hasattr(ev, name):
            v = getattr(ev, name)
            out[name] = round(v, 3) if isinstance(v, float) else v
    for name in ("at_sample", "speech_start_sample", "last_voiced_sample"):
        if name in out:
            out[name.replace("sample", "ms")] = out[name] * 1000 // 16000
    return out


def cmd_transcribe(cfg: Config, args: argparse.Namespace) -> int:
    from edge_voice.audio.wavio import read_wav_16k
    from edge_voice.core.cancel import CancelToken
    from edge_voice.engines.asr import local_transcriber

    t = time.perf_counter()
    asr = local_transcriber(cfg)
    load_ms = (time.perf_counter() - t) * 1000
    for f in args.files:
        audio = read_wav_16k(f)
        t = time.perf_counter()
        text = asr.transcribe(audio, CancelToken()).text
        ms = (time.perf_counter() - t) * 1000
        if args.json:
            print(
                json.dumps(
                    {
                        "file": f,
                        "text": text,
                        "audio_ms": len(audio) // 16,
                        "asr_ms": round(ms, 1),
                        "load_ms": round(load_ms, 1),
                    }
                )
            )
        else:
            print(text)
            print(
                f"  audio {len(audio) / 16000:.2f} s, asr {ms:.0f} ms (model load {load_ms:.0f} ms)",
                file=sys.stderr,
            )
    return 0


def cmd_say(cfg: Config, args: argparse.Namespace) -> int:
    """Speak text to the speaker, or to a WAV file with --output."""
    import numpy as np

    from edge_voice.audio.wavio import write_wav
    from edge_voice.core.cancel import CancelToken
    from edge_voice.engines.tts import PiperSynthesizer

    tts = PiperSynthesizer(cfg.tts)
    t = time.perf_counter()
    first_ms: float | None = None
    chunks = []
    for pcm in tts.synthesize(args.text, CancelToken()):
        first_ms = first_ms if first_ms is not None else (time.perf_counter() - t) * 1000
        chunks.append(pcm)
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    if args.output:
        write_wav(args.output, audio, tts.sample_rate)
        print(
            f"wrote {args.output}: {len(audio) / tts.sample_rate:.2f} s, first chunk {first_ms or 0:.0f} ms"
        )
        return 0
    from edge_voice.audio.sinks import SpeakerSink
    from edge_voice.audio.sources import InputClock

    sink = SpeakerSink(cfg.audio.output_device, tts.sample_rate, cfg.audio.output_chunk_ms, InputClock())
    step = tts.sample_rate * cfg.audio.output_chunk_ms // 1000
    for i in range(0, len(audio), step):
        sink.write(audio[i : i + step])
    sink.close()
    return 0


def cmd_ask(cfg: Config, args: argparse.Namespace) -> int:
    """Answer typed questions through the spoken turn's answer path: one argument, or one per stdin line."""
    from edge_voice.runtime.ask import load_asker

    asker = load_asker(cfg, session=args.session, progress=None if args.quiet else _progress)
    questions = [" ".join(args.text)] if args.text else None
    as_json = args.json or questions is None
    for line in questions if questions is not None else sys.stdin:
        question = line.strip()[:MAX_QUESTION_CHARS]
        if not question:
            continue
        answer = asker.ask(question)
        print(json.dumps(answer.as_json()) if as_json else answer.reply, flush=True)
    return 0


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from edge_voice.cli.run import run_daemon

    return run_daemon(cfg, args)


def cmd_demo(cfg: Config, args: argparse.Namespace) -> int:
    from edge_voice.cli.demo import run_demo

    return run_demo(cfg, Path(args.out))


def cmd_bench(cfg: Config, args: argparse.Namespace) -> int:
    import importlib

    mod = importlib.import_module(f"edge_voice.bench.{args.name.replace('-', '_')}")
    opts = dict(kv.split("=", 1) for kv in args.opt)
    parsed: dict[str, Any] = {k: int(v) if v.isdigit() else v for k, v in opts.items()}
    summary = mod.run(cfg, Path(args.out), **parsed)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_models(cfg: Config, args: argparse.Namespace) -> int:
    from edge_voice.models import registry

    if args.action == "build":
        from edge_voice.models.build import build_all

        for p in build_all(cfg.models_path, progress=not args.quiet):
            if not args.quiet:
                print(p)
        return 0
    from edge_voice.cli.doctor import custom_model_paths

    results = registry.verify_all(models_dir=cfg.models_path)
    custom = registry.custom_results(custom_model_paths(cfg))  # the user's own files: hashed, to pin
    bad = [r for r in results + custom if not r.ok]
    if args.action == "list" or not args.quiet:
        for r in results:
            mark = "opt" if r.skipped else "ok " if r.ok else "BAD"
            print(f"{mark} {r.name:32s} {r.path if r.ok and not r.skipped else r.message}")
        for r in custom:
            print(f"{'ok ' if r.ok else 'BAD'} {r.name:32s} {f'{r.path} {r.message}' if r.ok else r.message}")
    if bad:
        for r in bad:
            print(f"edge-voice: {r.message}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def cmd_doctor(cfg: Config, args: argparse.Namespace) -> int:
    from edge_voice.cli.doctor import run_doctor

    lines = run_doctor(cfg)
    worst = 0
    for line in lines:
        mark = {True: "ok  ", False: "FAIL", None: "info"}[line.ok]
        print(f"{mark} {line.name:18s} {line.detail}")
        if line.ok is False:
            worst = 1
    return worst


# ----------------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-voice", description="Offline voice assistant daemon")
    p.add_argument("--config", type=Path, help="config TOML (default /etc/edge-voice/config.toml)")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the assistant (microphone + speaker, or WAV in/out)")
    r.add_argument("--input", type=Path, help="WAV file instead of the microphone")
    r.add_argument("--output", type=Path, help="reply WAV instead of the speaker")
    r.add_argument("--events", type=Path, help="write every event as a JSON line here ('-' = stdout)")
    r.add_argument(
        "--fast", action="store_true", help="WAV input: skip idle stretches (real time during turns)"
    )
    r.add_argument("--no-mqtt", action="store_true", help="do not connect to MQTT even if configured")
    r.add_argument(
        "--room",
        type=Path,
        help="with --input: add the device's own playback back into the input through this simulated room "
        "(TOML [room] table: delay_ms, drift_ms_per_min, echo_gain_db, rt60_ms, noise_dbfs, seed)",
    )
    r.set_defaults(fn=cmd_run)

    li = sub.add_parser("listen", help="print wake/speech events as JSON lines")
    li.add_argument("--input", type=Path, help="WAV file instead of the microphone")
    li.add_argument("--realtime", action="store_true", help="pace a WAV input in real time")
    li.add_argument("--save-utterances", metavar="DIR", help="write each endpointed utterance as a WAV")
    li.set_defaults(fn=cmd_listen)

    t = sub.add_parser("transcribe", help="transcribe WAV files with whisper.cpp")
    t.add_argument("files", nargs="+")
    t.add_argument("--json", action="store_true")
    t.set_defaults(fn=cmd_transcribe)

    s = sub.add_parser("say", help="speak text (speaker, or --output WAV)")
    s.add_argument("text")
    s.add_argument("--output", type=Path)
    s.set_defaults(fn=cmd_say)

    a = sub.add_parser("ask", help="answer a typed question as a spoken turn would (rules, skills, LLM)")
    a.add_argument(
        "text", nargs="*", help="the question; none: one per line from standard input (JSON lines out)"
    )
    a.add_argument("--json", action="store_true", help="one JSON object: reply, route, intent, timings")
    a.add_argument("--session", action="store_true", help="keep history from one question to the next")
    a.add_argument("--quiet", action="store_true", help="no loading progress on standard error")
    a.set_defaults(fn=cmd_ask)

    d = sub.add_parser("demo", help="a full spoken turn from a generated WAV, with the latency breakdown")
    d.add_argument("--out", default="out")
    d.set_defaults(fn=cmd_demo)

    b = sub.add_parser("bench", help="benchmarks (JSON + PNG under bench-results/)")
    bench_names = [
        "listen",
        "asr",
        "asr-levers",
        "names",
        "answer",
        "answer-levers",
        "answers",
        "turn",
        "turn-taking",
        "turn-end",
        "soak",
        "remote",
        "home",
        "echo",
        "wake",
        "stop",
        "wake-micro",
        "load",
    ]
    b.add_argument("name", choices=bench_names)
    b.add_argument("--out", default="bench-results")
    b.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE")
    b.set_defaults(fn=cmd_bench)

    m = sub.add_parser("models", help="build derived models, verify checksums, list")
    m.add_argument("action", choices=["build", "verify", "list"])
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(fn=cmd_models)

    doc = sub.add_parser("doctor", help="check audio devices, models, broker, GPIO, CPU/RAM")
    doc.set_defaults(fn=cmd_doctor)

    from edge_voice.cli.wake import add_parser as add_wake_parser

    add_wake_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    heap.limit_arenas()  # before any engine thread allocates (see edge_voice/heap.py)
    args = build_parser().parse_args(argv)
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        print(f"edge-voice: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging(args.log_level or cfg.service.log_level)
    if cfg.service.adapt_to_load:  # before any engine loads libgomp
        from edge_voice.runtime.cpu import passive_openmp_waits

        passive_openmp_waits()
    from edge_voice.audio.sources import AudioDeviceError
    from edge_voice.audio.wavio import AudioFormatError
    from edge_voice.models.registry import ModelError
    from edge_voice.runtime.daemon import StartupError

    try:
        result: int = args.fn(cfg, args)
        return result
    except (StartupError, ModelError, AudioDeviceError, AudioFormatError, ConfigError) as exc:
        print(f"edge-voice: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        return 0


def entry() -> NoReturn:
    """The ``edge-voice`` program (and ``python -m edge_voice``): ``main``, then an exit that never
    finalizes the interpreter under an engine thread still running (``runtime/shutdown.py``)."""
    from edge_voice.runtime.shutdown import exit_status

    sys.exit(exit_status(main()))
