"""Bad MQTT input never crashes the bridge: every payload parses to a valid command or is rejected with a
``CommandError`` naming the field and why — and the bridge turns that into an ``error`` event plus a
``BadCommand`` (no broker needed: paho's message callback is driven directly).

Inputs per property: the hypothesis profile's count (tests/conftest.py: 2000 in CI, 100 locally) or the
share ``scaled`` below gives; ``pytest --hypothesis-show-statistics`` prints the counts.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from edge_voice.core.config import MQTT_COMMAND_NAMES, Config, MqttConfig
from edge_voice.core.events import Event
from edge_voice.core.messages import (
    BadCommand,
    CancelCommand,
    Command,
    ListenCommand,
    MuteCommand,
    SayCommand,
    VolumeCommand,
)
from edge_voice.integrations.mqtt import (
    COMMANDS,
    MAX_FIELD_NAME_CHARS,
    MAX_JSON_DEPTH,
    MAX_SAY_CHARS,
    CommandError,
    MqttBridge,
    _json_depth,
    event_payload,
    parse_command,
)
from tests.conftest import scaled

FIELDS = {"text", "on", "level"}  # every field any command has
LIMITS = (64, 4096, 1_000_000)  # mqtt.max_payload_bytes: the minimum, the default, the maximum
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # the profile's count

# ------------------------------------------------------------------------------------------ strategies

# any code point, including lone surrogates (a JSON "\ud800" escape decodes to one)
chars = st.one_of(st.characters(), st.characters(categories=["Cs"]))
names = st.one_of(st.sampled_from(COMMANDS), st.text(chars, max_size=80))
keys = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(chars, max_size=MAX_FIELD_NAME_CHARS + 10))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    # huge, still under Python's 4300-digit str() limit
    st.builds(lambda digits, sign: sign * 10**digits, st.integers(15, 4000), st.sampled_from([-1, 1])),
    st.floats(allow_nan=True, allow_infinity=True),  # NaN / Infinity / -Infinity literals
    st.text(chars, max_size=MAX_SAY_CHARS + 20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=10,
)
NESTED: Any = 1
for _ in range(60):
    NESTED = [NESTED]
small_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(chars, max_size=12), st.just([1, {"a": 2}])
)
documents = st.one_of(
    json_values,
    st.dictionaries(keys, json_values, max_size=4),
    st.builds(lambda k, v: {k: v}, st.sampled_from(sorted(FIELDS)), scalars),  # often a valid command
)


def encode(value: Any, ascii_only: bool) -> bytes:
    # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, as a broken client would send
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")


# -------------------------------------------------------------------------------------------- oracles


def check_valid(cmd: Command) -> None:
    """Whatever parses satisfies the command's own invariants."""
    if isinstance(cmd, SayCommand):
        assert cmd.text == cmd.text.strip() and 0 < len(cmd.text) <= MAX_SAY_CHARS
        assert "\0" not in cmd.text
        cmd.text.encode("utf-8")  # speakable and publishable
    elif isinstance(cmd, VolumeCommand):
        assert isinstance(cmd.level, float) and 0.0 <= cmd.level <= 1.0
    elif isinstance(cmd, MuteCommand):
        assert isinstance(cmd.on, bool)
    else:
        assert isinstance(cmd, ListenCommand | CancelCommand)


def check_rejection(exc: CommandError, extra_fields: frozenset[str] = frozenset()) -> None:
    """The field is a real one (or the payload, or the command name); the reason is a short, printable,
    publishable line."""
    assert type(exc) is CommandError
    message = str(exc)
    assert message == f"{exc.field}: {exc.reason}"
    # a quoted name is cut at 40 characters, but each may expand to a 10-character escape
    assert exc.reason.strip() and exc.reason.isprintable() and len(message) < 600, message
    message.encode("utf-8")
    if exc.field not in FIELDS | {"payload", "command"} | extra_fields:
        # an unknown key is named as the field only when it reads as a name
        assert exc.reason.startswith("unknown field; allowed:"), message
        assert 0 < len(exc.field) <= MAX_FIELD_NAME_CHARS and exc.field.isprintable()


def parse_or_reject(name: str, payload: bytes, max_bytes: int) -> Command | CommandError:
    try:
        cmd = parse_command(name, payload, max_bytes)
    except CommandError as exc:  # any other exception type fails the test
        check_rejection(exc)
        known = exc.field in FIELDS | {"payload", "command"}
        event(f"rejected: {exc.field if known else 'unknown key'}")
        return exc
    check_valid(cmd)
    event(f"accepted: {type(cmd).__name__}")
    return cmd


# ------------------------------------------------------------------------------------------ properties


@FUZZ
@given(name=names, payload=st.binary(max_size=5000), max_bytes=st.sampled_from(LIMITS))
@example(name="say", payload=b"\xef\xbb\xbf" + b'{"text": "hi"}', max_bytes=4096)  # UTF-8 BOM
@example(name="volume", payload=b"\xff\xfe{\x00}\x00", max_bytes=4096)  # UTF-16
@example(name="listen", payload=b" \t\r\n", max_bytes=64)
def test_any_bytes(name: str, payload: bytes, max_bytes: int) -> None:
    result = parse_or_reject(name, payload, max_bytes)
    if len(payload) > max_bytes:
        assert isinstance(result, CommandError) and result.field == "payload"
    elif name not in COMMANDS:
        assert isinstance(result, CommandError) and result.field == "command"


@FUZZ
@given(name=st.sampled_from(COMMANDS), doc=documents, ascii_only=st.booleans())
@example(name="volume", doc={"level": 10**400}, ascii_only=True)  # float() would overflow
@example(name="volume", doc={"level": float("nan")}, ascii_only=True)
@example(name="volume", doc={"level": float("-inf")}, ascii_only=True)
@example(name="say", doc={"text": "\ud800"}, ascii_only=True)  # escaped lone surrogate
@example(name="say", doc={"text": "\ud800"}, ascii_only=False)  # raw: not UTF-8
@example(name="say", doc={"text": "a\0b"}, ascii_only=True)
@example(name="say", doc={"": 1}, ascii_only=True)
@example(name="mute", doc={"on": NESTED}, ascii_only=True)  # no repr of the value in the message
def test_any_json_document(name: str, doc: Any, ascii_only: bool) -> None:
    payload = encode(doc, ascii_only)
    result = parse_or_reject(name, payload, 1_000_000)
    if isinstance(result, CommandError) and result.field not in FIELDS | {"payload", "command"}:
        assert isinstance(doc, dict) and result.field in doc  # the offending key, verbatim
    if not isinstance(result, CommandError) and name in ("say", "announce", "mute", "volume"):
        assert isinstance(doc, dict)


@FUZZ
@given(
    name=st.sampled_from(COMMANDS),
    pairs=st.lists(st.tuples(keys, small_values), max_size=5),
    ascii_only=st.booleans(),
)
def test_raw_objects_with_duplicate_keys(name: str, pairs: list[tuple[str, Any]], ascii_only: bool) -> None:
    body = ",".join(
        f"{json.dumps(k, ensure_ascii=ascii_only)}:{json.dumps(v, ensure_ascii=ascii_only)}" for k, v in pairs
    )
    payload = ("{" + body + "}").encode("utf-8", "surrogatepass")
    result = parse_or_reject(name, payload, 1_000_000)
    if len({k for k, _ in pairs}) < len(pairs):  # a repeated key is ambiguous: always rejected
        assert isinstance(result, CommandError)


@settings(max_examples=scaled(500), deadline=None)
@given(
    name=st.sampled_from(COMMANDS),
    depth=st.integers(min_value=1, max_value=100_000),
    opener=st.sampled_from(["[", '{"level":', '{"text":', '{"on":', '[{"x":']),
    closed=st.booleans(),
)
def test_deep_nesting(name: str, depth: int, opener: str, closed: bool) -> None:
    closer = {"[": "]", "{": "}"}
    tail = "".join(closer[c] for c in opener if c in closer)[::-1] * depth if closed else ""
    payload = (opener * depth + "1" + tail).encode()
    result = parse_or_reject(name, payload, 1_000_000)
    if depth > 2000:
        assert isinstance(result, CommandError)


@FUZZ
@given(
    name=st.sampled_from(["volume", "mute", "say"]),
    number=st.one_of(
        st.integers(min_value=1, max_value=20_000).map(lambda n: "9" * n),  # past the 4300-digit limit
        st.integers(min_value=0, max_value=400).map(lambda n: "0." + "0" * n + "1"),
        st.sampled_from(["1e99999", "-1e99999", "1E-99999", "-0", "-0.0", "NaN", "Infinity", "-Infinity"]),
    ),
)
def test_number_literals(name: str, number: str) -> None:
    field = {"volume": "level", "mute": "on", "say": "text"}[name]
    result = parse_or_reject(name, f'{{"{field}": {number}}}'.encode(), 1_000_000)
    if name == "volume" and isinstance(result, VolumeCommand):
        assert 0.0 <= result.level <= 1.0


@FUZZ
@given(
    name=st.sampled_from(COMMANDS),
    doc=st.dictionaries(st.sampled_from(sorted(FIELDS)), scalars, max_size=2),
    junk=st.lists(
        st.tuples(
            st.integers(min_value=0),
            # bytes that are invalid wherever they land: never in UTF-8, an overlong "/", a surrogate
            st.sampled_from([b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_invalid_utf8_anywhere(name: str, doc: dict[str, Any], junk: list[tuple[int, bytes]]) -> None:
    payload = bytearray(encode(doc, ascii_only=True))
    for pos, bad in junk:
        payload[pos % (len(payload) + 1) : pos % (len(payload) + 1)] = bad
    result = parse_or_reject(name, bytes(payload), 1_000_000)
    assert isinstance(result, CommandError)
    assert result.field == "payload" and "not UTF-8" in result.reason


@FUZZ
@given(
    name=st.sampled_from(COMMANDS),
    max_bytes=st.integers(min_value=64, max_value=20_000),
    slack=st.integers(-3, 3),
)
def test_size_limit_is_exact(name: str, max_bytes: int, slack: int) -> None:
    # a valid command padded with JSON whitespace to max_bytes + slack bytes
    say = b'{"text":"hi"}'
    core = {"say": say, "announce": say, "mute": b'{"on":true}', "volume": b'{"level":1}'}.get(name, b"{}")
    payload = core[:-1] + b" " * (max_bytes + slack - len(core)) + b"}"
    result = parse_or_reject(name, payload, max_bytes)
    if slack > 0:
        assert isinstance(result, CommandError) and result.field == "payload" and "exceeds" in result.reason
    else:
        assert not isinstance(result, CommandError)


# --------------------------------------------------------------------- the bridge: bad payload → event


class Recorder:
    """``on_command`` of a bridge that was never connected: paho's callback is driven directly."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        # every command allowed and no rate limit: what is fuzzed here is the parser
        mqtt = MqttConfig(allow_commands=MQTT_COMMAND_NAMES, commands_per_s=1000, command_burst=10000)
        self.bridge = MqttBridge(Config(device_id="fuzz", mqtt=mqtt), self.commands.append)

    def deliver(self, name: str, payload: bytes, retain: bool = False) -> tuple[Command, list[Event]]:
        self.commands.clear()
        msg = SimpleNamespace(topic=self.bridge.topics.cmd_filter[:-1] + name, payload=payload, retain=retain)
        self.bridge._on_message(None, None, msg)  # type: ignore[arg-type]  # paho's thread, no broker
        events: list[Event] = []
        while not self.bridge._inbox.empty():
            kind, value = self.bridge._inbox.get_nowait()
            if kind.name == "MESSAGE":
                events.append(value[1])
        assert len(self.commands) == 1, "on_command is called exactly once per message"
        return self.commands[0], events


def check_error_event(events: list[Event], cmd: Command, name: str) -> dict[str, Any]:
    assert isinstance(cmd, BadCommand) and cmd.name == name and cmd.message
    assert len(events) == 1 and events[0].type == "error"
    data = dict(events[0].data)
    assert data["code"] == "bad_command" and data["message"] == cmd.message
    assert data["message"] == f"{data['field']}: {data['reason']}"
    # the event must survive encoding: a field that cannot be encoded would be dropped by the sender
    body = json.loads(event_payload(events[0], device_id="fuzz", seq=1, wall_offset_ns=0))
    assert body["type"] == "error" and body["field"] == data["field"] and body["command"] == name
    return data


@pytest.mark.parametrize(
    ("name", "payload", "field", "why"),
    [
        ("volume", b'{"level": ' + b"9" * 400 + b"}", "level", "between 0 and 1"),
        ("volume", b'{"level": ' + b"9" * 5000 + b"}", "payload", "exceeds the limit"),  # default 4096 B
        ("say", b"[" * 4000, "payload", "nested too deeply"),  # the same error on 3.11 and 3.12+
        ("say", b'{"text": ' + b"[" * 33 + b"]" * 33 + b"}", "payload", "nested too deeply"),
        ("say", b'{"text": "\\ud800"}', "text", "unpaired surrogate"),
        ("say", b'{"text": "a", "text": "b"}', "payload", "duplicate field 'text'"),
        ("say", b'{"\\u0000": 1}', "payload", "unknown field '\\x00'"),
        ("mute", b'{"on": "\xff"}', "payload", "not UTF-8"),
        ("sing", b"{}", "command", "unknown command 'sing'"),
        ("say/extra", b"{}", "command", "unknown command 'say/extra'"),
    ],
)
def test_bridge_turns_a_bad_payload_into_an_error_event(
    name: str, payload: bytes, field: str, why: str
) -> None:
    cmd, events = Recorder().deliver(name, payload)
    data = check_error_event(events, cmd, name)
    assert data["field"] == field and why in data["reason"]
    assert data["topic"].endswith(f"/cmd/{name}")


def test_bridge_ignores_retained_commands_with_a_reason() -> None:
    cmd, events = Recorder().deliver("listen", b"{}", retain=True)
    assert check_error_event(events, cmd, "listen")["field"] == "retain"


def test_bridge_passes_a_valid_command_without_an_event() -> None:
    cmd, events = Recorder().deliver("volume", b'{"level": 0.5}')
    assert cmd == VolumeCommand(0.5) and events == []


@settings(max_examples=scaled(1000), deadline=None)
# topic names as a broker delivers them: valid UTF-8 (paho decodes the topic strictly)
@given(name=st.one_of(st.sampled_from(COMMANDS), st.text(max_size=80)), payload=st.binary(max_size=300))
def test_bridge_survives_any_message(name: str, payload: bytes) -> None:
    recorder = Recorder()
    cmd, events = recorder.deliver(name, payload)
    if isinstance(cmd, BadCommand):
        check_error_event(events, cmd, name)
    else:
        check_valid(cmd)
        assert events == []


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '"a \\" ' + "[" * 100 + '"'
    cmd, events = Recorder().deliver("say", json.dumps({"text": text}).encode())
    assert events == [] and cmd == SayCommand(text)
    # 32 levels are still JSON (the limit is ours, not the parser's)
    assert not _json_depth("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, MAX_JSON_DEPTH)
    assert _json_depth("[" * (MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)
