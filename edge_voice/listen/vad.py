"""Silero VAD (ONNX, no torch): 512-sample frames at 16 kHz, recurrent state [2, 1, 128] and the last 64
samples of the previous frame prepended as context, exactly as silero-vad's own ONNX wrapper does."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_voice.core.config import VadConfig
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.models import registry

log = logging.getLogger(__name__)

FRAME_SAMPLES = 512  # 32 ms at 16 kHz
CONTEXT_SAMPLES = 64


class SileroVad:
    """``VoiceActivityDetector`` on silero_vad.onnx. Used by the listen thread only."""

    frame_samples: int = FRAME_SAMPLES

    def __init__(self, cfg: VadConfig) -> None:
        import onnxruntime as ort  # lazy: heavy native runtime

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cfg.threads
        opts.inter_op_num_threads = 1  # one small graph per call: no parallel branches worth a thread
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        path = registry.resolve("silero-vad")
        self._session: Any = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        names = {i.name for i in self._session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise ValueError(f"vad: {path} has unexpected inputs {sorted(names)}")
        self._x: npt.NDArray[np.float32] = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), np.float32)
        self._state: npt.NDArray[np.float32] = np.zeros((2, 1, 128), np.float32)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        log.info("vad: silero %s, %d thread(s)", path.name, cfg.threads)

    def reset(self) -> None:
        self._x[:] = 0.0
        self._state = np.zeros((2, 1, 128), np.float32)

    def process(self, frame: Pcm) -> float:
        if len(frame) != FRAME_SAMPLES:
            raise ValueError(f"vad: frame must be {FRAME_SAMPLES} samples (got {len(frame)})")
        x = self._x
        x[0, :CONTEXT_SAMPLES] = x[0, -CONTEXT_SAMPLES:]  # context = tail of the previous frame
        x[0, CONTEXT_SAMPLES:] = frame
        x[0, CONTEXT_SAMPLES:] *= 1.0 / 32768.0
        prob, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        return float(prob.reshape(-1)[0])
