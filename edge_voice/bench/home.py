"""``edge-voice bench home``: what ``intents.backend = "home_assistant"`` costs a spoken command, against a
real local Home Assistant core (``make home-assistant``; started here on loopback with a template light).

Interleaved in one run, per command ("turn on/off the kitchen light"):
- ``local_match_ms``: the fast path's ``RuleIntentMatcher.match`` (what the local backend pays);
- ``ha_hop_ms``: ``POST /api/conversation/process`` round trip, HA matching *and* switching the light
  (what the HA backend pays instead, after the commit: HA is never asked on a speculation);
- ``tts_first_chunk_ms``: Piper's first chunk of HA's reply ("Turned on the light"): the local
  confirmations are synthesised ahead (phrase cache), HA's reply is not known before it arrives.
``v2v_added_ms_p50`` = hop − local match: the voice-to-voice time the HA backend adds when HA's reply is one
of its usual ones (``AGENT_PHRASES``, synthesised ahead like our confirmations; ``replies_cached`` counts
them); ``…_uncached`` adds Piper's first chunk, for any other reply.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.config import Config, HomeAssistantConfig

CONFIG = """\
homeassistant:
  name: edge-voice bench
  latitude: 0
  longitude: 0
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: US
  language: en
http:
  server_host: 127.0.0.1
  server_port: {port}
config:
onboarding:
conversation:
logger:
  default: warning
input_boolean:
  kitchen:
    name: Kitchen power
light:
  - platform: template
    lights:
      kitchen_light:
        friendly_name: Kitchen light
        value_template: "{{ is_state('input_boolean.kitchen', 'on') }}"
        turn_on:
          service: input_boolean.turn_on
          target: {entity_id: input_boolean.kitchen}
        turn_off:
          service: input_boolean.turn_off
          target: {entity_id: input_boolean.kitchen}
"""
TOKEN_ENV = "EDGE_VOICE_BENCH_HA_TOKEN"
COMMANDS = ("turn on the kitchen light", "turn off the kitchen light")


def _pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs, dtype=float)
    return {
        "p50": round(float(np.percentile(a, 50)), 3),
        "p95": round(float(np.percentile(a, 95)), 3),
        "mean": round(float(a.mean()), 3),
        "n": len(xs),
    }


def run(
    cfg: Config, out_dir: Path, rounds: int = 40, only: str = "", v2v_rounds: int = 12, **_: Any
) -> dict[str, Any]:
    """The whole bench; ``--opt only=languages``: the fast path in other languages alone (no HA, no TTS).
    ``v2v_rounds``: spoken commands through the real daemon per backend (0 = none)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    languages = run_languages(out_dir)
    if only == "languages":
        return languages
    from edge_voice.bench.ha_server import HomeAssistant, ha_venv
    from edge_voice.core.cancel import CancelToken
    from edge_voice.engines.intents import RuleIntentMatcher
    from edge_voice.engines.remote.home_assistant import AGENT_PHRASES, HomeAssistantAgent
    from edge_voice.engines.tts import PhraseCache, PiperSynthesizer

    venv = ha_venv()
    if not (venv / "bin" / "hass").exists():
        raise SystemExit(f"no Home Assistant in {venv}: run `make home-assistant` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    matcher = RuleIntentMatcher(cfg.intents)
    tts = PiperSynthesizer(cfg.tts, cfg.models_path)
    cache = PhraseCache(tts)  # what the daemon fills ahead when intents.backend = "home_assistant"
    for phrase in AGENT_PHRASES:
        cache.put(phrase, tts.synthesize_all(phrase))
    with tempfile.TemporaryDirectory(prefix="bench-home-") as tmp:
        ha = HomeAssistant(venv, Path(tmp) / "config", CONFIG)
        t = time.perf_counter()
        ha.start()
        try:
            ha.ready()
            start_s = time.perf_counter() - t
            os.environ[TOKEN_ENV] = ha.token
            agent = HomeAssistantAgent(HomeAssistantConfig(url=ha.url, token_env=TOKEN_ENV, timeout_ms=10000))
            for text in COMMANDS:  # warm: HA loads its sentence templates on the first request
                agent.ask(text, CancelToken())
            v2v = _voice_to_voice(cfg, ha.url, v2v_rounds) if v2v_rounds else None
            match_ms: list[float] = []
            hop_ms: list[float] = []
            first_chunk_ms: list[float] = []
            replies: dict[str, int] = {}
            cached = 0
            states_ok = 0
            for i in range(rounds):
                text = COMMANDS[i % 2]
                t0 = time.perf_counter()
                outcome = matcher.match(text)
                match_ms.append((time.perf_counter() - t0) * 1000)
                assert outcome is not None and outcome.name in ("turn_on", "turn_off"), outcome
                t0 = time.perf_counter()
                reply = agent.ask(text, CancelToken())
                hop_ms.append((time.perf_counter() - t0) * 1000)
                replies[reply.speech] = replies.get(reply.speech, 0) + 1
                state = ha.state("light.kitchen_light")
                states_ok += state is not None and state["state"] == ("on" if i % 2 == 0 else "off")
                cached += cache.get(reply.speech) is not None
                t0 = time.perf_counter()
                chunks = tts.synthesize(reply.speech, CancelToken())
                next(chunks)
                first_chunk_ms.append((time.perf_counter() - t0) * 1000)
                chunks.close()
        finally:
            ha.stop()
    fast_path, rules_ms, both_ms = _fast_path(cfg)
    match, hop, chunk = _pct(match_ms), _pct(hop_ms), _pct(first_chunk_ms)
    result: dict[str, Any] = {
        "bench": "home",
        "home_assistant": "2024.3.3 core, loopback, template light",
        "hassil": "hassil 3.13.1 + home-assistant-intents 2026.11.25 (the daemon's pins)",
        "rounds": rounds,
        "ha_start_and_onboard_s": round(start_s, 1),
        "local_match_ms": match,
        "ha_hop_ms": hop,
        "tts_first_chunk_ms": chunk,
        # HA's reply synthesised when it arrives, or (its usual replies, AGENT_PHRASES) from the cache
        "v2v_added_ms_p50_uncached": round(hop["p50"] + chunk["p50"] - match["p50"], 1),
        "v2v_added_ms_p50": round(hop["p50"] - match["p50"], 1),
        "replies_cached": f"{cached}/{rounds}",
        "replies": replies,
        "light_followed": f"{states_ok}/{rounds}",
        "fast_path": fast_path,
        "voice_to_voice": v2v,
        "fast_path_languages": {k: languages["languages"][k] for k in languages["languages"]},
        "note": "a shared 2-core box under load from other work; compare within this run only",
    }
    (out_dir / "home.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    _plot(match_ms, hop_ms, first_chunk_ms, rules_ms, both_ms, out_dir / "home.png", v2v)
    return result


def _voice_to_voice(cfg: Config, url: str, rounds: int) -> dict[str, Any]:
    """Spoken "Hey Jarvis, turn on/off the kitchen light" through the real daemon (whisper, the matcher,
    Piper; no MQTT), ``intents.backend`` local and home_assistant in alternating blocks on the same engines:
    voice-to-voice (``response.done``'s latency: last voiced sample → first reply sample) per backend."""
    from dataclasses import replace

    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock, WavSource
    from edge_voice.bench.turn import build_session
    from edge_voice.integrations.sinks import MemorySink
    from edge_voice.runtime.daemon import Daemon, load_engines

    base = replace(
        cfg,
        mqtt=replace(cfg.mqtt, enabled=False),
        conversation=replace(cfg.conversation, follow_up_window_ms=0),  # each "Hey Jarvis" its own turn
    )
    via_ha = replace(
        base,
        intents=replace(base.intents, backend="home_assistant"),
        home_assistant=replace(base.home_assistant, url=url, token_env=TOKEN_ENV),
    )
    engines = load_engines(base)
    block = max(1, rounds // 2)
    pcm, _turns = build_session(5000, [(f"{COMMANDS[i % 2]}.", "command") for i in range(block)])
    v2v: dict[str, list[float]] = {"local": [], "home_assistant": []}
    replies: dict[str, dict[str, int]] = {"local": {}, "home_assistant": {}}
    fallbacks = 0
    with tempfile.TemporaryDirectory(prefix="bench-home-v2v-") as tmp:
        for n, (name, c) in enumerate([("local", base), ("home_assistant", via_ha)] * 2):
            clock, memory = InputClock(), MemorySink()
            source = WavSource(pcm, pace="adaptive", clock=clock)
            sink = WavSink(Path(tmp) / f"{n}.wav", clock, engines.tts.sample_rate)
            Daemon(c, engines, source, sink, [memory], clock).run()
            fallbacks += len(memory.of("engine.fallback"))
            for ev in memory.of("response.done"):
                lat = ev.data.get("latency")
                if ev.data.get("status") == "done" and isinstance(lat, dict) and lat.get("voice_to_voice_ms"):
                    v2v[name].append(float(lat["voice_to_voice_ms"]))
                    reply = str(ev.data.get("reply"))
                    replies[name][reply] = replies[name].get(reply, 0) + 1
    local, via = _pct(v2v["local"]), _pct(v2v["home_assistant"])
    return {
        "what": "spoken commands through the real daemon, alternating blocks local / home_assistant",
        "local_ms": local,
        "home_assistant_ms": via,
        "added_ms_p50": round(via["p50"] - local["p50"], 1),
        "replies": replies,
        "engine_fallbacks": fallbacks,
        "samples_ms": {k: [round(x, 1) for x in xs] for k, xs in v2v.items()},
    }


def speculative_texts() -> list[str]:
    """What the fast path is asked on every speculative transcript: each command of ``bench names``
    word by word as it grows ("turn", "turn off", "turn off the", …), and the ASR bench's questions."""
    from edge_voice.bench.asr import QUESTIONS
    from edge_voice.bench.names import COMMANDS

    texts: list[str] = []
    for said, _devices, _action in COMMANDS:
        words = said.rstrip(".").split()
        texts += [" ".join(words[:n]) for n in range(1, len(words) + 1)]
    texts += list(QUESTIONS)
    return texts


def _fast_path(cfg: Config) -> tuple[dict[str, Any], list[float], list[float]]:
    """The fast path's match time on the speculative transcripts, with and without HA's sentence
    templates (``intents.ha_sentences``: hassil + home-assistant-intents after our rules, in this process,
    as the daemon runs it), interleaved text by text; and what hassil alone makes of the full commands."""
    from edge_voice.bench.names import COMMANDS
    from edge_voice.engines.ha_sentences import HaSentences
    from edge_voice.engines.intents import RuleIntentMatcher

    texts = speculative_texts()
    t0 = time.perf_counter()
    sentences = HaSentences(cfg.intents.devices, cfg.intents.language)
    build_ms = (time.perf_counter() - t0) * 1000
    rules = RuleIntentMatcher(cfg.intents)
    both = RuleIntentMatcher(cfg.intents, sentences=sentences)
    rules_ms: list[float] = []
    both_ms: list[float] = []
    rules_cpu: list[float] = []
    both_cpu: list[float] = []
    asked = by_ha = 0
    sentences.ran = 0
    for text in texts:
        # wall time (what the loop waits) and this thread's CPU time (what it costs, whatever the load)
        t0, c0 = time.perf_counter(), time.thread_time()
        alone = rules.match(text)
        rules_ms.append((time.perf_counter() - t0) * 1000)
        rules_cpu.append((time.thread_time() - c0) * 1000)
        t0, c0 = time.perf_counter(), time.thread_time()
        got = both.match(text)
        both_ms.append((time.perf_counter() - t0) * 1000)
        both_cpu.append((time.thread_time() - c0) * 1000)
        if alone is None:
            asked += 1
            by_ha += got is not None
    full = [said.rstrip(".") for said, _d, _a in COMMANDS]
    hassil_alone = {text: sentences.recognize(text) for text in full}  # after the timing: memo aside
    return (
        {
            "texts": len(texts),
            "build_ms": round(build_ms, 1),
            "rules_ms": _pct(rules_ms),
            "rules_then_ha_sentences_ms": _pct(both_ms),
            "rules_cpu_ms": _pct(rules_cpu),
            "rules_then_ha_sentences_cpu_ms": _pct(both_cpu),
            "rules_missed": asked,  # texts the rules did not match: offered to HA's sentences
            "hassil_ran": sentences.ran,  # of those, past the gates (cut short, no anchor or device)
            "matched_only_by_hassil": by_ha,
            "hassil_alone_commands_matched": f"{sum(r is not None for r in hassil_alone.values())}/{len(full)}",  # noqa: E501
            "hassil_alone": {t: (r.intent, dict(r.slots)) if r else None for t, r in hassil_alone.items()},
            "languages": "en (HA's English templates + data/intents/en.yaml)",
        },
        rules_ms,
        both_ms,
    )


# The fast path in another language (``intents.language``): a home's devices named in it, its commands
# as HA's templates have them, grown word by word as speculative transcripts come, and questions for the
# LLM (no match: hassil's slowest case). Our rules and gates are English, so every text goes to hassil.
LANGUAGE_CASES: dict[str, tuple[tuple[tuple[str, str, str, str], ...], tuple[str, ...], tuple[str, ...]]] = {
    "de": (
        (
            ("Küchenlicht", "light", "light.kuechenlicht", "Küche"),
            ("Stehlampe", "light", "light.stehlampe", "Wohnzimmer"),
            ("Ventilator", "fan", "fan.ventilator", "Wohnzimmer"),
            ("Kaffeemaschine", "switch", "switch.kaffeemaschine", "Küche"),
        ),
        (
            "Schalte das Küchenlicht ein",
            "Schalte den Ventilator aus",
            "Mach das Licht im Wohnzimmer an",
            "Schalte alle Lichter aus",
            "Schalte die Kaffeemaschine ein",
            "Setze die Helligkeit vom Küchenlicht auf 40 Prozent",
            "Stelle einen Timer für 5 Minuten",
            "Wie spät ist es",
            "Welches Datum ist heute",
            "Stoppe den Timer",
        ),
        (
            "Wie ist das Wetter morgen",
            "Was ist die Hauptstadt von Frankreich",
            "Erzähl mir einen Witz",
            "Wie viele Beine hat eine Spinne",
            "Warum ist der Himmel blau",
        ),
    ),
    "fr": (
        (
            ("lumière de la cuisine", "light", "light.cuisine", "cuisine"),
            ("lampe du salon", "light", "light.salon", "salon"),
            ("ventilateur", "fan", "fan.ventilateur", "salon"),
            ("cafetière", "switch", "switch.cafetiere", "cuisine"),
        ),
        (
            "Allume la lumière de la cuisine",
            "Éteins le ventilateur",
            "Allume les lumières dans le salon",
            "Allume la cafetière",
            "Règle la luminosité de la lampe du salon à 40 %",
            "Mets la lumière de la cuisine en rouge",
            "Quelle heure est-il",
            "Quelle est la date",
            "Annule le minuteur",
        ),
        (
            "Quel temps fera-t-il demain",
            "Quelle est la capitale de l'Allemagne",
            "Raconte-moi une blague",
            "Combien de pattes a une araignée",
            "Pourquoi le ciel est-il bleu",
        ),
    ),
}


def run_languages(out_dir: Path) -> dict[str, Any]:
    """Per language: building HA's templates and response sentences (start-up), and the match of every
    speculative transcript, languages interleaved text by text, English (rules, then HA's sentences,
    gated) in the same loop as the baseline. ``hassil_ms``: what one match costs (wall and this thread's
    CPU); another language's match runs on the ASR thread (``prepare``), and ``loop_ms`` is what the
    event loop then pays for it (a memo hit). → ``home-languages.json`` + ``.png``."""
    # imports paid once by whichever language loads first: out of every build_ms
    import hassil  # noqa: F401
    import jinja2.sandbox  # noqa: F401

    from edge_voice.core.config import DeviceEntry, IntentsConfig
    from edge_voice.engines.ha_sentences import HaSentences
    from edge_voice.engines.intents import RuleIntentMatcher

    timed: dict[str, RuleIntentMatcher] = {}
    prepared: dict[str, RuleIntentMatcher] = {}
    texts: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for lang in ("en", *LANGUAGE_CASES):
        if lang == "en":
            cfg, spoken = IntentsConfig(), speculative_texts()
        else:
            devices, commands, questions = LANGUAGE_CASES[lang]
            entries = tuple(DeviceEntry(n, k, (), e, a) for n, k, e, a in devices)  # type: ignore[arg-type]
            cfg = IntentsConfig(language=lang, devices=entries)
            spoken = [" ".join(c.split()[:n]) for c in commands for n in range(1, len(c.split()) + 1)]
            spoken += list(questions)
        t0 = time.perf_counter()
        sentences = HaSentences(cfg.devices, lang)
        build_ms = (time.perf_counter() - t0) * 1000
        timed[lang], texts[lang] = RuleIntentMatcher(cfg, sentences=sentences), spoken
        prepared[lang] = RuleIntentMatcher(cfg, sentences=HaSentences(cfg.devices, lang))
        out[lang] = {"build_ms": round(build_ms, 1), "texts": len(spoken)}
    wall: dict[str, list[float]] = {lang: [] for lang in timed}
    cpu: dict[str, list[float]] = {lang: [] for lang in timed}
    loop: dict[str, list[float]] = {lang: [] for lang in timed}
    for i in range(max(len(t) for t in texts.values())):
        for lang, m in timed.items():
            if i < len(texts[lang]):
                text = texts[lang][i]
                t0, c0 = time.perf_counter(), time.thread_time()
                m.match(text)
                wall[lang].append((time.perf_counter() - t0) * 1000)
                cpu[lang].append((time.thread_time() - c0) * 1000)
                prepared[lang].prepare(text)  # the ASR thread's part (English: nothing)
                t0 = time.perf_counter()
                prepared[lang].match(text)
                loop[lang].append((time.perf_counter() - t0) * 1000)
    for lang, m in timed.items():
        assert m.sentences is not None
        out[lang] |= {
            "hassil_ms": _pct(wall[lang]),
            "hassil_cpu_ms": _pct(cpu[lang]),
            "loop_ms": _pct(loop[lang]),
            "hassil_ran": m.sentences.ran,
        }
        if lang != "en":
            commands = LANGUAGE_CASES[lang][1]
            replies = {c: (r.name, r.reply) if (r := m.match(c)) else None for c in commands}
            out[lang]["commands_matched"] = f"{sum(r is not None for r in replies.values())}/{len(commands)}"
            out[lang]["replies"] = replies
    result = {
        "bench": "home languages",
        "hassil": "hassil 3.13.1 + home-assistant-intents 2026.11.25, jinja2 3.1.6 (the daemon's pins)",
        "what": "intents.language: HaSentences build (templates + response sentences) and match() on "
        "speculative transcripts (each command word by word + questions), languages interleaved; en = "
        "rules then HA's sentences, gated, on the loop (loop_ms = hassil_ms); another language = HA's "
        "templates on every text, on the ASR thread (hassil_ms), the loop's memo hit (loop_ms)",
        "languages": out,
        "note": "a shared 2-core box under load from other work; compare within this run only",
    }
    (out_dir / "home-languages.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    _plot_languages(wall, loop, out_dir / "home-languages.png")
    return result


def _plot_languages(wall: dict[str, list[float]], loop: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, names = [], []
    for lang in wall:
        data.append(wall[lang])
        names.append(
            "en\nrules, then HA\n(on the loop)" if lang == "en" else f"{lang}\nHA's templates\n(ASR thread)"
        )
        if lang != "en":
            data.append([max(x, 1e-3) for x in loop[lang]])
            names.append(f"{lang}\nthe loop's\nmemo hit")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(data) + 1), names, fontsize=8)
    ax.axhline(5.0, color="red", linestyle="--", linewidth=0.8, label="5 ms budget (event loop)")
    ax.set_yscale("log")
    ax.set_ylabel("ms per speculative transcript (log)")
    ax.set_title("Fast-path match by intents.language", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot(
    match_ms: list[float],
    hop_ms: list[float],
    chunk_ms: list[float],
    rules_ms: list[float],
    both_ms: list[float],
    path: Path,
    v2v: dict[str, Any] | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [3, 2, 2] if v2v else [3, 2]
    fig, axes = plt.subplots(
        1, len(widths), figsize=(5 * len(widths), 4.5), gridspec_kw={"width_ratios": widths}
    )
    ax, ax2 = axes[0], axes[1]
    if v2v:
        ax3 = axes[2]
        ax3.boxplot([v2v["samples_ms"]["local"], v2v["samples_ms"]["home_assistant"]], showfliers=True)
        ax3.set_xticks([1, 2], ["local fast path", "HA's conversation\nagent"])
        ax3.set_ylabel("ms")
        ax3.set_title("Spoken command, voice-to-voice (daemon)", fontsize=10)
    ax.boxplot([match_ms, hop_ms, chunk_ms], showfliers=True)
    ax.set_xticks([1, 2, 3], ["local matcher", "HA conversation hop", "Piper first chunk\nof HA's reply"])
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_title("A device command: fast path vs HA's conversation agent", fontsize=10)
    ax2.boxplot([rules_ms, both_ms], showfliers=True)
    ax2.axhline(5.0, color="red", linestyle="--", linewidth=0.8, label="5 ms budget")
    ax2.set_xticks([1, 2], ["rules", "rules, then\nHA's sentences"])
    ax2.set_yscale("log")
    ax2.set_title(f"Fast path on {len(rules_ms)} speculative transcripts", fontsize=10)
    ax2.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
