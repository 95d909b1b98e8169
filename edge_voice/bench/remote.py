"""``edge-voice bench remote``: the same spoken LLM turns through the daemon with the on-device LLM and
with a remote OpenAI-compatible server (llama.cpp's server on this host, same model, same sampling), in
one run: what the remote hop adds to time-to-first-token and voice-to-voice.

The server runs in a child process (``LlmServer``: ``xllamacpp.Server`` with an HTTP port, i.e.
llama-server) on 127.0.0.1. Both daemons share the same loaded ASR/TTS/LLM objects (the remote run wraps
the on-device LLM as its fallback, exactly as ``load_engines`` does), and the question blocks run in ABBA
order so drift on a shared machine hits both backends alike. A direct probe (the same request streamed
in-process and over HTTP, alternating) isolates the hop from the rest of the pipeline.

On one host the remote hop cannot win: the server competes for the same cores. The figure measures the
protocol cost (HTTP + JSON + server-sent events + a second process); a real deployment adds the network
round trip and gains a faster machine.

``python -m edge_voice.bench.remote serve --port N`` runs the server alone (tests use it too).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from edge_voice.bench.turn import QUESTIONS, _pct, build_session
from edge_voice.core.config import Config, LlmConfig
from edge_voice.core.conversation import prompt_prefix
from edge_voice.core.vocabulary import Latency as L

SERVE_READY = "edge-voice llm server ready"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlmServer:
    """llama.cpp's OpenAI-compatible HTTP server with the configured model, in a child process on
    127.0.0.1. ``start`` returns once ``/health`` answers; ``kill`` simulates a crash (SIGKILL)."""

    def __init__(self, cfg: LlmConfig, models_dir: Path | None = None, port: int = 0) -> None:
        self.cfg = cfg
        self.models_dir = models_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 120.0) -> LlmServer:
        args = [sys.executable, "-m", "edge_voice.bench.remote", "serve", "--port", str(self.port)]
        args += ["--model", self.cfg.model, "--threads", str(self.cfg.threads)]
        args += ["--context-tokens", str(self.cfg.context_tokens)]
        if self.models_dir is not None:
            args += ["--models-dir", str(self.models_dir)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llm server exited with {self.proc.returncode} before it was ready")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self._get("/health")[0] == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llm server not ready on port {self.port} within {timeout_s:.0f} s")

    def metrics(self) -> dict[str, float]:
        """llama.cpp's Prometheus counters, e.g. ``tokens_predicted_total`` (prefix stripped)."""
        status, body = self._get("/metrics")
        if status != 200:
            raise RuntimeError(f"GET /metrics: HTTP {status}")
        out: dict[str, float] = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name.removeprefix("llamacpp:")] = float(value)
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LlmServer:
        return self.start() if self.proc is None else self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


def serve(port: int, model: str, threads: int, context_tokens: int, models_dir: Path | None) -> None:
    """Run llama.cpp's HTTP server until SIGTERM; sampling defaults as the on-device LLM's."""
    import threading

    import xllamacpp

    from edge_voice.engines.llm import REPEAT_PENALTY, SEED
    from edge_voice.models import registry

    params = xllamacpp.CommonParams()
    params.model.path = str(registry.resolve(model, models_dir))
    params.n_ctx = context_tokens
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.cache_ram_mib = 0
    params.sampling.penalty_repeat = REPEAT_PENALTY  # server-side: clients send standard fields only
    params.sampling.seed = SEED
    params.port = port  # a port turns xllamacpp's in-process server into llama-server's HTTP API
    params.n_threads_http = 2
    params.endpoint_metrics = True
    params.verbosity = -1
    server = xllamacpp.Server(params)
    print(f"{SERVE_READY} {server.listening_address}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


# ----------------------------------------------------------------------------------------- bench


def run(
    cfg: Config, out_dir: Path, questions: int = 6, blocks: int = 0, gap_ms: int = 16000, **_: Any
) -> dict[str, Any]:
    """``questions`` spoken LLM turns per backend, in ``blocks`` daemon sessions per backend (0 = one per
    question: the finest interleaving, so load from other processes hits both backends alike)."""
    from edge_voice.audio import clips
    from edge_voice.engines.remote.fallback import FallbackGenerator
    from edge_voice.engines.remote.openai import OpenAiGenerator
    from edge_voice.runtime.daemon import load_engines

    out_dir.mkdir(parents=True, exist_ok=True)
    # independent turns (no follow-up window), the on-device LLM loaded once and shared
    cfg = replace(
        cfg,
        conversation=replace(cfg.conversation, follow_up_window_ms=0),
        llm=replace(cfg.llm, backend="local"),
    )
    from edge_voice.engines.intents import RuleIntentMatcher

    matcher = RuleIntentMatcher(cfg.intents) if cfg.intents.enabled else None
    llm_questions = [q for q in QUESTIONS if matcher is None or matcher.match(q) is None]  # LLM turns only
    texts = [(q, "question") for q in (llm_questions * (questions // len(llm_questions) + 1))[:questions]]
    n_blocks = max(1, min(blocks or len(texts), len(texts)))
    per = -(-len(texts) // n_blocks)
    sessions = [build_session(gap_ms, texts[i : i + per]) for i in range(0, len(texts), per)]
    clips._piper_voice.cache_clear()
    gc.collect()

    with LlmServer(cfg.llm, cfg.models_path) as server:
        remote_cfg = replace(cfg, llm=replace(cfg.llm, backend="openai", base_url=server.base_url))
        engines = load_engines(cfg)
        local_llm = engines.llm
        remote = OpenAiGenerator(remote_cfg.llm)
        wrapper = FallbackGenerator(remote, local_llm, f"openai {server.base_url}")
        t = time.perf_counter()
        wrapper.warm(prompt_prefix(cfg.llm))  # the local is warm already; this primes the server
        remote_warm_ms = (time.perf_counter() - t) * 1000
        remote_engines = replace(engines, llm=wrapper)
        before = server.metrics()

        rows: list[dict[str, Any]] = []
        fallbacks: list[dict[str, Any]] = []
        t_run = time.perf_counter()
        for b, (pcm, _turns) in enumerate(sessions):
            order = ("local", "remote") if b % 2 == 0 else ("remote", "local")  # ABBA
            for backend in order:
                eng = engines if backend == "local" else remote_engines
                r, f = _session(remote_cfg if backend == "remote" else cfg, eng, pcm, out_dir, backend, b)
                rows += r
                fallbacks += f
        wall_s = time.perf_counter() - t_run
        after = server.metrics()
        probe = _probe(cfg, local_llm, remote, texts)

    result = _summarise(rows, fallbacks, probe, before, after, remote_warm_ms, wall_s, len(texts))
    (out_dir / "remote.json").write_text(json.dumps(result, indent=2, default=str))
    _plot(result, rows, probe, out_dir / "remote.png")
    return {k: v for k, v in result.items() if k not in ("rows", "probe_rows")}


def _session(
    cfg: Config, engines: Any, pcm: Any, out_dir: Path, backend: str, block: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock, WavSource
    from edge_voice.integrations.sinks import MemorySink
    from edge_voice.runtime.daemon import Daemon

    clock = InputClock()
    source = WavSource(pcm, pace="adaptive", clock=clock)
    sink = WavSink(out_dir / f"remote-{backend}-{block}.wav", clock, engines.tts.sample_rate)
    memory = MemorySink()
    Daemon(cfg, engines, source, sink, [memory], clock).run()
    rows = []
    for ev in memory.of("response.done"):
        if ev.data.get("status") != "done" or ev.data.get("route") != "llm":
            continue
        lat = ev.data.get("latency")
        lat = lat if isinstance(lat, dict) else {}
        rows.append(
            {
                "backend": backend,
                "block": block,
                "transcript": ev.data.get("transcript"),
                "reply": ev.data.get("reply"),
                **lat,
            }
        )
    return rows, [dict(e.data, backend_run=backend) for e in memory.of("engine.fallback")]


def _probe(cfg: Config, local: Any, remote: Any, texts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The hop alone: the same request in-process and over HTTP, alternating, first token and total."""
    from edge_voice.core.cancel import CancelToken
    from edge_voice.engines.llm import build_messages

    out = []
    for i, (text, _kind) in enumerate(texts):
        msgs = build_messages(prompt_prefix(cfg.llm), [], text[:1].upper() + text[1:])
        for name in ("local", "remote") if i % 2 == 0 else ("remote", "local"):
            gen = local if name == "local" else remote
            reply = "".join(gen.stream(msgs, CancelToken()))
            st = gen.last
            out.append(
                {
                    "backend": name,
                    "text": text,
                    "ttft_ms": round(st.ttft_ms, 1),
                    "total_ms": round(st.total_ms, 1),
                    "tokens": st.tokens,
                    "reply": reply,
                }
            )
    return out


def _summarise(
    rows: list[dict[str, Any]],
    fallbacks: list[dict[str, Any]],
    probe: list[dict[str, Any]],
    before: dict[str, float],
    after: dict[str, float],
    remote_warm_ms: float,
    wall_s: float,
    spoken: int,
) -> dict[str, Any]:
    def stats(backend: str) -> dict[str, Any]:
        sel = [r for r in rows if r["backend"] == backend]
        d: dict[str, Any] = {"turns": len(sel)}
        for k in (L.LLM_TTFT, L.VOICE_TO_VOICE, L.ASR, L.FIRST_SENTENCE, L.TTS_FIRST_CHUNK):
            xs = [r[k] for r in sel if r.get(k) is not None]
            d[f"{k}_p50"], d[f"{k}_p95"] = _pct(xs, 50), _pct(xs, 95)
        ps = [p for p in probe if p["backend"] == backend]
        d["probe_ttft_ms_p50"] = _pct([p["ttft_ms"] for p in ps], 50)
        d["probe_ttft_ms_p95"] = _pct([p["ttft_ms"] for p in ps], 95)
        d["probe_total_ms_p50"] = _pct([p["total_ms"] for p in ps], 50)
        return d

    local, remote = stats("local"), stats("remote")

    def added(key: str) -> float | None:
        a, b = remote.get(key), local.get(key)
        return round(a - b, 1) if a is not None and b is not None else None

    by_q: dict[tuple[int, str], dict[str, str]] = {}
    for r in rows:
        by_q.setdefault((r["block"], str(r["transcript"])), {})[r["backend"]] = str(r["reply"])
    pairs = [v for v in by_q.values() if len(v) == 2]
    return {
        "bench": "remote",
        "machine": {"cores": os.cpu_count()},
        "server": "llama.cpp server (xllamacpp.Server with an HTTP port) on 127.0.0.1, same model",
        "questions_spoken_per_backend": spoken,
        "wall_s": round(wall_s, 1),
        "remote_warm_ms": round(remote_warm_ms, 1),
        "local": local,
        "remote": remote,
        "added_by_remote_hop": {
            "llm_ttft_ms_p50": added("llm_ttft_ms_p50"),
            "llm_ttft_ms_p95": added("llm_ttft_ms_p95"),
            "voice_to_voice_ms_p50": added("voice_to_voice_ms_p50"),
            "voice_to_voice_ms_p95": added("voice_to_voice_ms_p95"),
            "probe_ttft_ms_p50": added("probe_ttft_ms_p50"),
        },
        "same_reply_both_backends": f"{sum(v['local'] == v['remote'] for v in pairs)}/{len(pairs)}",
        "server_requests": {
            k: after.get(k, 0) - before.get(k, 0) for k in ("tokens_predicted_total", "prompt_tokens_total")
        },
        "fallbacks": fallbacks,
        "rows": rows,
        "probe_rows": probe,
    }


def _plot(
    result: dict[str, Any], rows: list[dict[str, Any]], probe: list[dict[str, Any]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    series = [
        ("voice-to-voice", L.VOICE_TO_VOICE, rows),
        ("daemon TTFT", L.LLM_TTFT, rows),
        ("probe TTFT", "ttft_ms", probe),
    ]
    data, labels = [], []
    for title, key, src in series:
        for backend in ("local", "remote"):
            data.append([r[key] for r in src if r["backend"] == backend and r.get(key) is not None] or [0])
            labels.append(f"{title}\n{backend}")
    ax1.boxplot(data[:2], tick_labels=labels[:2])
    ax1.set_ylabel("end of speech → first reply sample (ms)")
    ax1.set_title("Spoken LLM turns through the daemon")
    ax2.boxplot(data[2:], tick_labels=labels[2:])
    ax2.set_ylabel("ms")
    hop = result["added_by_remote_hop"]
    ax2.set_title(
        f"First token: remote hop adds {hop['llm_ttft_ms_p50']} ms (daemon p50), "
        f"{hop['probe_ttft_ms_p50']} ms (probe p50)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge_voice.bench.remote")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="llama.cpp's OpenAI-compatible server on 127.0.0.1 until SIGTERM")
    s.add_argument("--port", type=int, required=True)
    d = LlmConfig()
    s.add_argument("--model", default=d.model)
    s.add_argument("--threads", type=int, default=d.threads)
    s.add_argument("--context-tokens", type=int, default=d.context_tokens)
    s.add_argument("--models-dir", type=Path, default=None)
    a = p.parse_args(argv)
    serve(a.port, a.model, a.threads, a.context_tokens, a.models_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
