"""Moonshine's pieces that need no model: the tokenizer file, detokenizing, the ORT → ONNX subgraph naming
on a hand-built protobuf, the config checks of ``asr.engine``, and which engine's transcript the
command-first hybrid returns (fake engines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import AsrConfig, Config, ConfigError
from edge_voice.core.messages import Pcm
from edge_voice.engines.base import PromptedTranscriber, ReportsRetry, Transcription
from edge_voice.engines.moonshine import CommandFirstTranscriber, detokenize, load_tokens
from edge_voice.models import ort_convert as oc
from edge_voice.models.registry import ModelError


def _tok_file(tokens: list[bytes], path: Path) -> Path:
    data = b"".join(oc._enc_varint(len(t)) + t for t in tokens)
    path.write_bytes(data)
    return path


def test_tokenizer_file_round_trips_short_and_long_tokens(tmp_path: Path) -> None:
    tokens = [b"<unk>", b"<s>", b"</s>", b"\x00", "▁turn".encode(), b"x" * 200, b""]
    assert load_tokens(_tok_file(tokens, tmp_path / "t.bin")) == tokens


def test_a_truncated_tokenizer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    path.write_bytes(b"\x05<s>")
    with pytest.raises(ModelError, match="not a moonshine tokenizer"):
        load_tokens(path)


def test_detokenize_spaces_bytes_and_specials() -> None:
    tokens = [b"<unk>", b"<s>", b"</s>", "▁Turn".encode(), "▁on".encode(), b".", b"\xc3", b"\xa9"]
    assert detokenize(tokens, [1, 3, 4, 5]) == "Turn on."
    assert detokenize(tokens, [3, 6, 7]) == "Turné"  # a character split over byte-fallback tokens
    assert detokenize(tokens, [0, 2, 99]) == ""  # specials and ids out of range are dropped


def _msg(*fields: bytes) -> bytes:
    return b"".join(fields)


def _s(field: int, value: bytes) -> bytes:
    return oc._len_field(field, value)


def _graph_name(graph: bytes) -> bytes | None:
    return next((v for f, w, v in oc._fields(graph) if f == oc._GRAPH_NAME and w == 2), None)


def test_name_subgraphs_names_the_if_branches_and_keeps_everything_else() -> None:
    inner_node = _msg(_s(oc._NODE_NAME, b"add"), _s(4, b"Add"))
    then_g = _msg(_s(oc._GRAPH_NODE, inner_node), _s(oc._GRAPH_NAME, b""))  # an explicit empty name
    else_g = _msg(_s(oc._GRAPH_NAME, b"kept"), _s(oc._GRAPH_NODE, inner_node))
    attr_then = _msg(_s(oc._ATTR_NAME, b"then_branch"), _s(oc._ATTR_G, then_g), b"\xa0\x01\x05")  # type = 5
    attr_else = _msg(_s(oc._ATTR_NAME, b"else_branch"), _s(oc._ATTR_G, else_g))
    node = _msg(
        _s(oc._NODE_NAME, b"if"),
        _s(4, b"If"),
        _s(oc._NODE_ATTRIBUTE, attr_then),
        _s(oc._NODE_ATTRIBUTE, attr_else),
    )
    init = _s(5, b"\x01\x02" * 50)  # an initializer: copied byte for byte
    model = _msg(b"\x08\x08", _s(oc._MODEL_GRAPH, _msg(_s(oc._GRAPH_NODE, node), init)), _s(8, b"opset"))

    out = oc.name_subgraphs(model)
    top = list(oc._fields(out))
    assert top[0] == (1, 0, b"\x08\x08") and top[2] == (8, 2, b"opset")
    graph = top[1][2]
    assert _graph_name(graph) == b"main"
    assert (5, 2, b"\x01\x02" * 50) in list(oc._fields(graph))
    (node_out,) = [v for f, w, v in oc._fields(graph) if f == oc._GRAPH_NODE]
    attrs = [v for f, w, v in oc._fields(node_out) if f == oc._NODE_ATTRIBUTE]
    branches = [next(v for f, w, v in oc._fields(a) if f == oc._ATTR_G) for a in attrs]
    assert _graph_name(branches[0]) == b"main/if/then_branch1"
    assert [v for f, w, v in oc._fields(branches[0]) if f == oc._GRAPH_NAME] == [b"main/if/then_branch1"]
    assert _graph_name(branches[1]) == b"kept"
    assert (20, 0, b"\xa0\x01\x05") in list(oc._fields(attrs[0]))  # the attribute's type survives
    assert oc.name_subgraphs(out) == out  # idempotent: everything is named now


def test_varints_round_trip() -> None:
    for n in (0, 1, 127, 128, 300, 1 << 21, (1 << 35) + 5):
        assert oc._varint(oc._enc_varint(n), 0) == (n, len(oc._enc_varint(n)))


def test_asr_engine_is_checked_at_start_up() -> None:
    assert AsrConfig().engine == "whisper"
    assert AsrConfig(engine="moonshine").engine == "moonshine"
    with pytest.raises(ConfigError, match=r"asr\.engine"):
        AsrConfig(engine="vosk")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="English only"):
        AsrConfig(engine="moonshine", language="de")


class _Engine:
    """A transcriber that returns one fixed transcription and counts its calls."""

    def __init__(self, text: str, aborted: str = "") -> None:
        self.result = Transcription(text, aborted)  # type: ignore[arg-type]
        self.calls = 0
        self.prompts: list[str] = []
        self.on_retry: object = None

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        self.calls += 1
        return self.result

    def transcribe_prompted(self, audio: Pcm, cancel: CancelToken, prompt: str) -> Transcription:
        self.prompts.append(prompt)
        return self.result

    def interrupt(self) -> bool:
        return True


def _hybrid(
    first: str, second: str = "whisper's", aborted: str = ""
) -> tuple[CommandFirstTranscriber, _Engine, _Engine]:
    moon, whisper = _Engine(first, aborted), _Engine(second)
    return CommandFirstTranscriber(Config(), moon, whisper), moon, whisper  # type: ignore[arg-type]


AUDIO = np.zeros(16000, np.int16)


@pytest.mark.parametrize(
    "text",
    ["Turn on the kitchen light.", "Set a timer for 5 minutes.", "Turn off the fan and the bedroom light."],
)
def test_a_command_moonshine_heard_is_not_decoded_again(text: str) -> None:
    asr, moon, whisper = _hybrid(text)
    assert asr.transcribe(AUDIO, CancelToken()).text == text
    assert (moon.calls, whisper.calls, asr.last_engine) == (1, 0, "moonshine")


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of France?",  # a question: the LLM's, whisper's words
        "Switch off the battery light.",  # an unknown device: whisper has the device-name prompt
        "Turn on the light.",  # which light? a clarification is not acted on
        "",
    ],
)
def test_anything_else_is_whispers(text: str) -> None:
    asr, moon, whisper = _hybrid(text)
    assert asr.transcribe(AUDIO, CancelToken()).text == "whisper's"
    assert (moon.calls, whisper.calls, asr.last_engine) == (1, 1, "whisper")


def test_a_cancelled_turn_is_not_decoded_twice() -> None:
    asr, _, whisper = _hybrid("", aborted="cancelled")
    assert asr.transcribe(AUDIO, CancelToken()).aborted == "cancelled"
    assert whisper.calls == 0


def test_the_stop_check_and_the_retry_report_go_to_whisper() -> None:
    asr, moon, whisper = _hybrid("Turn on the fan.")
    asr.transcribe_prompted(AUDIO, CancelToken(), "Stop.")
    assert whisper.prompts == ["Stop."] and moon.calls == 0

    def report(ms: int) -> None: ...

    asr.on_retry = report
    assert whisper.on_retry is report and asr.on_retry is report
    assert isinstance(asr, ReportsRetry) and isinstance(asr, PromptedTranscriber)
