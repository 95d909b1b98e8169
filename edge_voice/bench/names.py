"""``edge-voice bench names``: are device names heard right, with and without whisper's device-name
prompt (``asr.bias_device_names``), and what does the prompt cost and risk?

Clips: device commands (one and two devices, the default device names) and ordinary questions, in the
ASR bench's six voices (Piper at two speeds, four espeak-ng voices), clean and at 10 dB SNR, laid out as the
endpointer hands them over. Every clip is decoded by two whisper.cpp instances of the same model, without
and with the prompt, alternately (so load on the shared box hits both alike).

- ``names_heard``: share of the device names said that appear verbatim in the transcript (ASR alone);
- ``devices_right``: share of commands the fast path turns into the right action on exactly the devices said
  (ASR + the fuzzy matcher); ``asked`` = it asked back (clarify), ``wrong`` = it would act on other devices;
- WER of commands and of questions; ``questions_changed`` = question transcripts the prompt changed,
  ``leaks`` = a device name in a question's transcript that the question did not say, ``word_leaks`` =
  words of the prompt there that were not said ("how many lights does a spider have");
- ``asr_ms`` with and without, and the prompt's length in words (each costs decoder prompt tokens).

Session 13 (design note 223): every transcript is also matched by two matchers in the same run, ``old``
(names by letters) and ``new`` (letters, then sounds-like phonemes), each command counted once as
``right`` / ``clarified`` (asked back; ``clarified_right`` = the question offers the devices said) /
``refused`` (unknown_device) / ``wrong`` (an action on other devices) / ``to_llm``; split by voice family
(Piper, espeak-ng). Commands naming a device the home does not have (``UNKNOWN``) must stay refused, and
question transcripts must get no device reply from either matcher (``questions_as_devices``). ``match_ms``:
the cost of each matcher per command transcript (a timing on a shared box: compare only old vs new).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.bench.asr import QUESTIONS, SNR_DB, VOICES, _speech, edit_distance, normalize, stats
from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE

ACTIONS = frozenset({"turn_on", "turn_off", "set_brightness", "step_brightness", "set_color"})
OUTCOMES = ("right", "clarified_right", "clarified", "refused", "wrong", "to_llm", "other")
# (spoken text, the configured devices it names, the action)
COMMANDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Turn off the hallway light and the bedroom light.", ("hallway light", "bedroom light"), "turn_off"),
    ("Turn on the kitchen light and the coffee machine.", ("kitchen light", "coffee machine"), "turn_on"),
    ("Turn on the kitchen light and the fan.", ("kitchen light", "fan"), "turn_on"),
    ("Switch on the living room light.", ("living room light",), "turn_on"),
    ("Turn off the fan.", ("fan",), "turn_off"),
    ("Turn on the hallway light.", ("hallway light",), "turn_on"),
    ("Dim the bedroom light.", ("bedroom light",), "step_brightness"),
    ("Set the living room light to forty percent.", ("living room light",), "set_brightness"),
    ("Switch off the coffee machine.", ("coffee machine",), "turn_off"),
    ("Make the hallway light blue.", ("hallway light",), "set_color"),
    (
        "Turn off the living room light and the hallway light.",
        ("living room light", "hallway light"),
        "turn_off",
    ),
    ("Turn on the bedroom light.", ("bedroom light",), "turn_on"),
    ("Brighten the kitchen light.", ("kitchen light",), "step_brightness"),
    ("Turn the fan on.", ("fan",), "turn_on"),
    ("Switch off the kitchen light and the bedroom light.", ("kitchen light", "bedroom light"), "turn_off"),
    ("Turn on the hallway light and the fan.", ("hallway light", "fan"), "turn_on"),
)


# only here, not in bench home's set: the turn-taking bench's miss ("Switch the fan up.")
MORE_COMMANDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Switch the fan off.", ("fan",), "turn_off"),
    ("Turn on the fan.", ("fan",), "turn_on"),
)
# a device the default home does not have: refused, never asked about as if it were a configured one
UNKNOWN: tuple[str, ...] = (
    "Turn on the garage door.",
    "Switch off the television.",
    "Turn on the porch light.",
    "Turn off the phone.",
)


def _clips(cfg: Config) -> list[dict[str, Any]]:
    from edge_voice.audio import clips

    texts = [(t, "command", devs, action) for t, devs, action in (*COMMANDS, *MORE_COMMANDS)]
    texts += [(u, "unknown", (), "") for u in UNKNOWN]
    texts += [(q, "question", (), "") for q in QUESTIONS]
    pre, tail = cfg.endpoint.pre_roll_ms, cfg.endpoint.silence_end_ms
    out = []
    for k, (text, kind, devs, action) in enumerate(texts):
        for v, voice in enumerate(VOICES):
            clip = clips.compose(
                [
                    ("pre", clips.silence(pre)),
                    ("speech", _speech(text, voice)),
                    ("tail", clips.silence(tail)),
                ],
                seed=k * 10 + v,
            )
            end = clip.part("speech").end_sample + tail * SAMPLE_RATE // 1000
            for snr in (None, SNR_DB):
                pcm = clip.pcm if snr is None else clips.mix_at_snr(clip.pcm, snr, seed=1000 + k * 10 + v)
                out.append(
                    {
                        "text": text,
                        "kind": kind,
                        "devices": devs,
                        "action": action,
                        "voice": voice,
                        "snr_db": snr,
                        "pcm": pcm[:end],
                    }
                )
    return out


def outcome(row: dict[str, Any], result: Any) -> str:
    """What a matcher made of one transcript: right / clarified / clarified_right / refused / wrong /
    to_llm / other (a non-device intent: timer, stop, …)."""
    if result is None:
        return "to_llm"
    said = row["devices"]
    if result.name == "clarify":
        offered = {*result.slot_values("understood"), *result.slot_values("candidate")}
        return "clarified_right" if said and set(said) <= offered else "clarified"
    if result.name == "unknown_device":
        return "refused"
    if result.name in ACTIONS:
        right = result.name == row["action"] and sorted(result.slot_values("device")) == sorted(said)
        return "right" if right else "wrong"
    return "other"


def _matched(
    row: dict[str, Any], transcript: str, matchers: dict[str, Any], repeat: int = 1
) -> dict[str, Any]:
    """Each matcher's outcome, and its cost: the fastest of ``repeat`` matches (a preempted one is not the
    matcher's cost; the sounds-like memo is warm after the first, as on a repeated speculative text)."""
    out: dict[str, Any] = {}
    for name, matcher in matchers.items():
        times = []
        for _ in range(max(1, repeat)):
            t = time.perf_counter()
            result = matcher.match(transcript)
            times.append((time.perf_counter() - t) * 1000)
        ms = min(times)
        out[name] = {
            "outcome": outcome(row, result),
            "match_ms": round(ms, 3),
            "first_ms": round(times[0], 3),
        }
        if result is not None:
            out[name]["reply"] = result.reply
    return out


def _score(row: dict[str, Any], transcript: str, matcher: Any, prompt_words: set[str]) -> dict[str, Any]:
    norm = " ".join(normalize(transcript))
    said = row["devices"]
    heard = sum(1 for d in said if f" {d} " in f" {norm} ")
    result = matcher.match(transcript) if row["kind"] == "command" else None
    got = tuple(result.slot_values("device")) if result is not None else ()
    right = result is not None and result.name == row["action"] and sorted(got) == sorted(said)
    asked = result is not None and result.name == "clarify"
    names = [d.name for d in matcher.devices]
    ref = f" {' '.join(normalize(row['text']))} "
    leaks = [n for n in names if f" {n} " in f" {norm} " and f" {n} " not in ref]
    ref_words = set(ref.split())
    word_leaks = [w for w in norm.split() if w in prompt_words and w not in ref_words]
    return {
        "transcript": transcript,
        "names_heard": heard,
        "right": right,
        "asked": asked,
        # acted on other devices (or did another thing to them); unknown_device and clarify act on nothing
        "wrong": result is not None and result.name in ACTIONS and not right,
        "intent": result.name if result is not None else None,
        "word_errors": edit_distance(normalize(row["text"]), normalize(transcript)),
        "leaks": leaks,
        "word_leaks": word_leaks,  # words of the device names that the speaker did not say
    }


def _decode(
    cfg: Config,
    clip_set: list[dict[str, Any]],
    prompt: str,
    matcher: Any,
    matchers: dict[str, Any],
    prompt_words: set[str],
    engine: str = "whisper",
) -> list[dict[str, Any]]:
    from edge_voice.engines.asr import WhisperCppTranscriber

    # accuracy is the question here: a decode aborted at the daemon's time budget because another process
    # took the shared cores would count as a mishearing (the decode cost is compared pair by pair)
    asr_cfg = replace(cfg.asr, max_decode_ms=max(cfg.asr.max_decode_ms, 20000))
    plain: Any = WhisperCppTranscriber(asr_cfg, cfg.models_path)
    if engine == "moonshine":  # "off" is then Moonshine (it has no prompt) beside whisper with the prompt
        from edge_voice.engines.moonshine import MoonshineTranscriber

        plain.close()
        plain = MoonshineTranscriber(asr_cfg, cfg.models_path)
    biased = WhisperCppTranscriber(asr_cfg, cfg.models_path, prompt=prompt)
    rows = []
    for i, c in enumerate(clip_set):
        order = ((plain, "off"), (biased, "on")) if i % 2 == 0 else ((biased, "on"), (plain, "off"))
        row = {k: v for k, v in c.items() if k != "pcm"}
        for asr, tag in order:
            r = asr.decode(c["pcm"])
            row[tag] = {
                **_score(c, r.text, matcher, prompt_words),
                "matchers": _matched(c, r.text, matchers),
                "asr_ms": round(r.decode_ms, 1),
                "audio_ms": r.audio_ms,
                "steps": r.steps,
                "aborted": r.aborted,
            }
        rows.append(row)
    plain.close()
    biased.close()
    return rows


def run(
    cfg: Config,
    out_dir: Path,
    transcripts: str = "",
    repeat: int = 1,
    engine: str = "whisper",
    **_: Any,
) -> dict[str, Any]:
    """``--opt engine=moonshine``: the "off" column is Moonshine base instead of whisper without the prompt
    (session 15: its device names beside whisper's with the prompt). ``--opt transcripts=names.json``:
    no decoding; the transcripts of an earlier run are matched again
    by both matchers (the matcher's before/after on the same whisper output, in seconds). ``--opt
    repeat=N``: each match timed N times, the fastest kept (``match_ms``; a timing: run it under the
    latency lock, at normal priority)."""
    from edge_voice.engines.asr import device_prompt
    from edge_voice.engines.intents import RuleIntentMatcher
    from edge_voice.engines.phonetic import espeak_phonemizer

    out_dir.mkdir(parents=True, exist_ok=True)
    prompt = device_prompt(cfg.intents.devices)
    prompt_words = set(normalize(prompt))
    matcher = RuleIntentMatcher(cfg.intents)
    # match() changes no state (apply is never called): one matcher of each kind serves every transcript
    matchers = {
        "old": RuleIntentMatcher(cfg.intents),
        "new": RuleIntentMatcher(cfg.intents, phonemes=espeak_phonemizer()),
    }
    gen_s = 0.0
    if transcripts:
        rows = json.loads(Path(transcripts).read_text())["rows"]
        for row in rows:
            row["devices"] = tuple(row["devices"])
            for tag in ("off", "on"):
                text = row[tag]["transcript"]
                row[tag].update(_score(row, text, matcher, prompt_words))
                row[tag]["matchers"] = _matched(row, text, matchers, repeat)
    else:
        t = time.perf_counter()
        clip_set = _clips(cfg)
        gen_s = time.perf_counter() - t
        rows = _decode(cfg, clip_set, prompt, matcher, matchers, prompt_words, engine)

    def outcomes(tag: str, snr: float | None, family: str | None, kind: str) -> dict[str, Any]:
        rs = [
            r
            for r in rows
            if r["snr_db"] == snr and r["kind"] == kind and (family is None or r["voice"].startswith(family))
        ]
        out: dict[str, Any] = {"n": len(rs)}
        for name in matchers:
            got = [r[tag]["matchers"][name]["outcome"] for r in rs]
            out[name] = {k: got.count(k) for k in OUTCOMES}
        return out

    def summary(tag: str, snr: float | None) -> dict[str, Any]:
        rs = [r for r in rows if r["snr_db"] == snr]
        cmds = [r for r in rs if r["kind"] == "command"]
        qs = [r for r in rs if r["kind"] == "question"]
        said = sum(len(r["devices"]) for r in cmds)

        def wer_of(sel: list[dict[str, Any]]) -> float:
            words = sum(len(normalize(r["text"])) for r in sel)
            errors = sum(int(r[tag]["word_errors"]) for r in sel)
            return round(errors / max(1, words), 4)

        return {
            "commands": len(cmds),
            "names_heard": round(sum(r[tag]["names_heard"] for r in cmds) / max(1, said), 3),
            "devices_right": round(sum(r[tag]["right"] for r in cmds) / max(1, len(cmds)), 3),
            "asked": sum(r[tag]["asked"] for r in cmds),
            "wrong": sum(r[tag]["wrong"] for r in cmds),
            "to_llm": sum(r[tag]["intent"] is None for r in cmds),
            "wer_commands": wer_of(cmds),
            "wer_questions": wer_of(qs),
            "question_leaks": sum(bool(r[tag]["leaks"]) for r in qs),
            "question_word_leaks": sum(len(r[tag]["word_leaks"]) for r in qs),
            "aborted": sum(bool(r[tag]["aborted"]) for r in rs),
            "asr_ms": stats([r[tag]["asr_ms"] for r in rs]),
            # session 13: the same transcripts through the old and the new matcher
            "commands_by_matcher": {
                fam or "all": outcomes(tag, snr, fam, "command") for fam in (None, "piper", "espeak")
            },
            "unknown_devices": outcomes(tag, snr, None, "unknown"),
            "questions_as_devices": {
                name: sum(r[tag]["matchers"][name]["outcome"] not in ("to_llm", "other") for r in qs)
                for name in matchers
            },
        }

    conditions = {
        f"{tag}_{'clean' if snr is None else f'{snr:.0f}db'}": summary(tag, snr)
        for tag in ("off", "on")
        for snr in (None, SNR_DB)
    }

    def match_stats(key: str) -> dict[str, Any]:
        """Each matcher's ``key`` time over every command transcript, without and with the prompt."""
        return {
            name: stats(
                [r[t]["matchers"][name][key] for r in rows if r["kind"] != "question" for t in ("off", "on")],
                digits=3,
            )
            for name in matchers
        }

    questions = [r for r in rows if r["kind"] == "question"]
    changed = [r for r in questions if normalize(r["off"]["transcript"]) != normalize(r["on"]["transcript"])]
    off_ms = np.array([r["off"]["asr_ms"] for r in rows])
    on_ms = np.array([r["on"]["asr_ms"] for r in rows])
    result: dict[str, Any] = {
        "bench": "names",
        "machine": {"cores": os.cpu_count(), "threads": cfg.asr.threads},
        "model": cfg.asr.model,
        "prompt": prompt,
        "prompt_words": len(prompt.split()),
        "voices": list(VOICES),
        "snr_db": SNR_DB,
        "clips": len(rows),
        "transcripts_from": transcripts or None,
        "match_repeat": repeat,  # set: no decoding, an earlier run's transcripts rematched
        "clip_generation_s": round(gen_s, 1),
        "conditions": conditions,
        "asr_ms_cost": {  # with the prompt minus without, the same clip decoded back to back
            "mean": round(float((on_ms - off_ms).mean()), 1),
            "p50": round(float(np.percentile(on_ms - off_ms, 50)), 1),
            "relative_mean": round(float(on_ms.mean() / off_ms.mean() - 1), 3),
        },
        "match_first_ms": match_stats("first_ms"),  # the first match of each text: the sounds-like memo cold
        "match_ms": match_stats("match_ms"),  # per command transcript, both matchers on one text back to back
        "still_misheard": sorted(
            {
                (r["text"], r[tag]["transcript"], r[tag]["matchers"]["new"]["outcome"])
                for r in rows
                for tag in ("off", "on")
                if r["kind"] == "command"
                and r[tag]["matchers"]["new"]["outcome"] not in ("right", "clarified_right")
            }
        ),
        "changed_by_new": sorted(
            {
                (r["text"], r[tag]["transcript"], r[tag]["matchers"]["new"].get("reply", ""))
                for r in rows
                for tag in ("off", "on")
                if r[tag]["matchers"]["new"]["outcome"] != r[tag]["matchers"]["old"]["outcome"]
            }
        ),
        "questions_changed": len(changed),
        "questions_changed_examples": [
            {
                "text": r["text"],
                "voice": r["voice"],
                "snr_db": r["snr_db"],
                "off": r["off"]["transcript"],
                "on": r["on"]["transcript"],
            }
            for r in changed[:12]
        ],
        "rows": rows,
        "off_engine": "moonshine base (no prompt)" if engine == "moonshine" else "whisper without the prompt",
    }
    (out_dir / "names.json").write_text(json.dumps(result, indent=2))
    _plot(result, out_dir / "names.png")
    return {k: v for k, v in result.items() if k != "rows"}


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cond = result["conditions"]
    fig, (ax0, ax1, ax2, ax3) = plt.subplots(1, 4, figsize=(22, 4.8))
    # session 13: what each matcher made of the same command transcripts, per condition
    keys = [(c, m) for c in ("off_clean", "on_clean", "off_10db", "on_10db") for m in ("old", "new")]
    colours = {
        "right": "tab:green",
        "clarified_right": "tab:olive",
        "clarified": "tab:orange",
        "refused": "tab:red",
        "wrong": "black",
        "to_llm": "tab:gray",
        "other": "tab:purple",
    }
    bottoms = np.zeros(len(keys))
    for o, colour in colours.items():
        vals = np.array([cond[c]["commands_by_matcher"]["all"][m][o] for c, m in keys], dtype=float)
        ax0.bar(np.arange(len(keys)), vals, 0.7, bottom=bottoms, color=colour, label=o)
        bottoms += vals
    labels = [f"{'prompt' if c.startswith('on') else 'none'}\n{c.split('_')[1]}\n{m}" for c, m in keys]
    ax0.set_xticks(np.arange(len(keys)), labels, fontsize=7)
    ax0.set_ylim(0, bottoms.max() * 1.3)
    ax0.set(ylabel="command transcripts", title="old (letters) vs new (+ sounds-like) matcher")
    ax0.legend(fontsize=7, loc="upper center", ncol=4)
    x = np.arange(2)
    for j, (tag, label) in enumerate((("off", "no prompt"), ("on", "device-name prompt"))):
        ax1.bar(
            x + (j - 0.5) * 0.38,
            [100 * cond[f"{tag}_{n}"]["devices_right"] for n in ("clean", "10db")],
            0.38,
            label=f"{label}: devices right",
        )
        ax1.scatter(
            x + (j - 0.5) * 0.38,
            [100 * cond[f"{tag}_{n}"]["names_heard"] for n in ("clean", "10db")],
            color="k",
            marker="_",
            s=300,
            zorder=3,
            label="names heard verbatim" if j == 0 else None,
        )
        ax2.bar(
            x + (j - 0.5) * 0.38,
            [100 * cond[f"{tag}_clean"][k] for k in ("wer_commands", "wer_questions")],
            0.38,
            label=label,
        )
    ax1.set_xticks(x, ["clean", f"{result['snr_db']:.0f} dB SNR"])
    ax1.set(ylabel="% of commands", ylim=(0, 105), title="device commands acted on right")
    ax1.legend(fontsize=7, loc="lower left")
    ax2.set_xticks(x, ["commands", "questions"])
    ax2.set(
        ylabel="WER (%) clean",
        title=f"word errors ({result['questions_changed']} question transcripts changed)",
    )
    ax2.legend(fontsize=8)
    rows = result["rows"]
    ax3.boxplot([[r["off"]["asr_ms"] for r in rows], [r["on"]["asr_ms"] for r in rows]])
    ax3.set_xticks([1, 2], ["no prompt", f"prompt ({result['prompt_words']} words)"])
    ax3.set(ylabel="asr_ms per clip", title=f"decode time (+{result['asr_ms_cost']['mean']} ms mean)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
