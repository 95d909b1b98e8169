"""Pure logic around the ASR engine: audio_ctx sizing, the voicing gate, transcript cleaning, loop collapse,
and the bench's WER normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from edge_voice.audio import clips
from edge_voice.bench.asr import edit_distance, normalize, number_words, wer
from edge_voice.core.config import AsrConfig, Config, DeviceEntry, IntentsConfig
from edge_voice.engines.asr import (
    asr_prompt,
    audio_ctx_for,
    clean_transcript,
    collapse_loop,
    device_prompt,
    drop_echo,
    has_voice,
)


@pytest.mark.parametrize(
    ("seconds", "floor", "expected"),
    [
        (0.5, 512, 512),
        (3.0, 512, 512),
        (9.6, 512, 512),
        (9.7, 512, 768),
        (14.0, 512, 768),
        (20.0, 512, 1280),
        (29.0, 512, 1500),
        (60.0, 512, 1500),
        (1.0, 600, 768),
        (1.0, 100, 256),
    ],
)
def test_audio_ctx_covers_the_audio_in_steps_of_256(seconds: float, floor: int, expected: int) -> None:
    ctx = audio_ctx_for(int(seconds * 16000), floor)
    assert ctx == expected
    assert ctx == 1500 or ctx >= seconds * 50 + 32  # the whole utterance + margin is encoded


def vowel(ms: int, f0: float = 140.0, dbfs: float = -20.0) -> np.ndarray:
    """A crude voiced sound: harmonics of f0 under a formant-like envelope, with a slow pitch drift."""
    t = np.arange(16 * ms) / 16000
    phase = 2 * np.pi * np.cumsum(np.full(len(t), f0) * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / 16000
    x = sum(np.sin(k * phase) / k * np.exp(-((((k * f0) - 700) / 600) ** 2)) for k in range(1, 25))
    x = x / np.sqrt(np.mean(x**2)) * 32768 * 10 ** (dbfs / 20)
    return np.asarray(x).astype(np.int16)


def test_voicing_gate_passes_voiced_sound_and_rejects_noise() -> None:
    assert has_voice(np.concatenate([clips.silence(300), vowel(300), clips.silence(300)]))
    assert has_voice(clips.mix_at_snr(np.concatenate([clips.silence(300), vowel(300)]), 5.0))
    assert not has_voice(clips.silence(2000))
    assert not has_voice(clips.noise(3000, -20))
    assert not has_voice(clips.noise(3000, -20, kind="pink"))
    assert not has_voice(vowel(40))  # too short to be a syllable
    assert not has_voice(vowel(500, dbfs=-70))  # voiced but inaudible


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[BLANK_AUDIO]", ""),
        ("(water running)", ""),
        (" [MUSIC] ", ""),
        ("*sigh*", ""),
        ("♪ ♪", ""),
        ("you", ""),
        ("You.", ""),
        ("Thanks for watching!", ""),
        ("...", ""),
        ("(clears throat) Turn on the light.", "Turn on the light."),
        ("Thank you.", "Thank you."),  # a real thing to say to an assistant
        ("Set a timer for 5 minutes.", "Set a timer for 5 minutes."),
    ],
)
def test_clean_transcript_drops_non_speech(raw: str, expected: str) -> None:
    assert clean_transcript(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("turn on the kitchen light turn on the kitchen light turn on the", "turn on the kitchen light"),
        ("Play some jazz. Play some jazz. Play some jazz in the place of the place", "Play some jazz."),
        ("play jazz in the living room in the living room in the living", "play jazz in the living room"),
        ("what is the capital of France", "what is the capital of France"),
    ],
)
def test_collapse_loop(text: str, expected: str) -> None:
    assert collapse_loop(text) == expected


def test_number_words() -> None:
    assert [number_words(n) for n in (0, 7, 13, 30, 45, 100, 730, 1999)] == [
        "zero",
        "seven",
        "thirteen",
        "thirty",
        "forty five",
        "one hundred",
        "seven hundred thirty",
        "one thousand nine hundred ninety nine",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Set a timer for 5 minutes.", "set a timer for five minutes"),
        ("Dim it to 30%.", "dim it to thirty percent"),
        ("Wake me at 7:30", "wake me at seven thirty"),
        ("at 7:00", "at seven"),
        ("It's the 3rd of May, 2nd floor, 21st", "its the third of may second floor twenty first"),
        ("Rock & roll -- well-known!", "rock and roll well known"),
    ],
)
def test_normalize(text: str, words: str) -> None:
    assert normalize(text) == words.split()


def test_edit_distance_and_wer() -> None:
    assert edit_distance(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1  # substitution
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1  # deletion
    assert edit_distance(["a", "b", "c"], ["a", "b", "c", "d", "e"]) == 2  # insertions
    assert edit_distance([], ["a", "b"]) == 2
    assert wer(
        ["Turn on the light.", "Set a timer for five minutes."],
        ["turn on the lights", "set a timer for 5 minutes"],
    ) == pytest.approx(1 / 10)


def test_device_prompt_names_each_configured_device_once() -> None:
    assert (
        asr_prompt(Config())
        == "Kitchen light, living room light, bedroom light, hallway light, fan, coffee machine."
    )
    devices = (
        DeviceEntry("Garden  Pump", "switch", ("water pump",)),
        DeviceEntry("garden pump"),
        DeviceEntry("desk lamp"),
    )
    assert device_prompt(devices) == "Garden pump, desk lamp."  # names, not aliases; each once
    assert asr_prompt(Config(asr=AsrConfig(bias_device_names=False))) == ""
    assert asr_prompt(Config(intents=IntentsConfig(devices=()))) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What time is it? What time is it?", "What time is it?"),
        ("What is 2 plus d? What is 2 plus d? What is 2 plus d?", "What is 2 plus d?"),
        ("turn on the light and turn on the fan", "turn on the light and turn on the fan"),
        ("very very", "very very"),  # under three words: left alone
        ("no no no no", "no no no no"),
        ("Tell me a story. Tell me", "Tell me a story. Tell me"),  # not whole copies
        ("", ""),
    ],
)
def test_drop_echo(text: str, expected: str) -> None:
    assert drop_echo(text) == expected
