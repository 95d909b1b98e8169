"""A decode with its own prompt (the stop word's check, ``transcribe_prompted``) with the real whisper.cpp:
it uses that prompt, and the decodes after it run with the fixed prompt again (pywhispercpp keeps a
parameter once given, so the engine must put it back)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge_voice.audio import clips
from edge_voice.core.cancel import NEVER
from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE
from edge_voice.core.stop_word import STOP_PROMPT, is_stop
from edge_voice.engines.asr import WhisperCppTranscriber, asr_prompt

pytestmark = pytest.mark.engines


def test_a_prompted_decode_then_the_fixed_prompt_again() -> None:
    base = Config()
    # no 3 s limit: a decode aborted by a loaded CI box would say nothing about the prompt
    cfg = dataclasses.replace(base, asr=dataclasses.replace(base.asr, max_decode_ms=60000))
    pad = np.zeros(SAMPLE_RATE // 4, np.int16)
    stop = np.concatenate([pad, clips.piper_speech("Stop."), pad])
    command = np.concatenate([pad, clips.piper_speech("Turn on the hallway light."), pad])
    asr = WhisperCppTranscriber(cfg.asr, cfg.models_path, prompt=asr_prompt(cfg))
    fresh = WhisperCppTranscriber(cfg.asr, cfg.models_path, prompt=asr_prompt(cfg))
    try:
        assert is_stop(asr.transcribe_prompted(stop, NEVER, STOP_PROMPT).text)
        after = asr.decode(command).text
        assert after == fresh.decode(command).text  # the device-name prompt is back
        assert "hallway" in after.lower()
    finally:
        asr.close()
        fresh.close()
