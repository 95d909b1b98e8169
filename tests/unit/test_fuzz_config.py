"""Bad configuration never escapes as anything but a ``ConfigError`` naming the dotted key (or the file and
line, or the environment variable).

Generated TOML documents mix every real section and key (read from the dataclasses, so new fields are
covered) with unknown ones and values of every TOML type; environment overrides get random names and
text. Inputs per property: the hypothesis profile's count (tests/conftest.py: 2000 in CI, 100 locally) or
the share ``scaled`` below gives; ``pytest --hypothesis-show-statistics`` prints counts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from edge_voice.core.config import Config, ConfigError, load
from tests.conftest import scaled

HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]  # the fixture is module-scoped
FUZZ = settings(deadline=None, suppress_health_check=HEALTH)  # as many examples as the profile says
# generating whole documents costs ~10 ms an example on this box: fewer, to keep the file under 30 s in CI
FUZZ_DOCS = settings(FUZZ, max_examples=scaled(1000))
FUZZ_BROKEN = settings(FUZZ, max_examples=scaled(300))

# ------------------------------------------------------------------------------------------------ schema

HINTS = typing.get_type_hints(Config)
SECTIONS: dict[str, type[Any]] = {
    name: tp for name, tp in HINTS.items() if dataclasses.is_dataclass(tp) and isinstance(tp, type)
}
TOP_SCALARS = sorted(set(HINTS) - set(SECTIONS))
FIELDS = {name: typing.get_type_hints(cls) for name, cls in SECTIONS.items()}


def is_scalar(tp: Any) -> bool:
    return tp in (bool, int, float, str) or get_origin(tp) is Literal


# --------------------------------------------------------------------------------------- TOML writing


def toml_str(s: str) -> str:
    """A TOML basic string: printable ASCII as is, everything else as a \\U escape."""
    out = []
    for c in s:
        if c in '"\\' or not (" " <= c <= "~"):
            out.append(f"\\U{ord(c):08X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


BARE = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(k: str) -> str:
    return k if BARE.fullmatch(k) else toml_str(k)


class Raw(str):
    """A TOML literal written verbatim (dates, nan, inf)."""


def toml_value(v: Any) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # finite only: NaN and infinities come as Raw
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_lines(doc: Mapping[str, Any]) -> list[str]:
    """Top-level values first, then one ``[table]`` per dict (TOML's ordering rule)."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{toml_key(k)}]")
            lines += [f"{toml_key(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
    return lines


# ------------------------------------------------------------------------------------------ strategies

no_surrogates = st.characters(exclude_categories=["Cs"])
PLAUSIBLE: list[Any] = [0, 1, -1, 2, 8, 80, 100, 500, 1000, 1883, 16000, 65536, True, False]
PLAUSIBLE += [0.0, 0.5, 0.999, 1.0, 2.0, -0.1, 1e300, "", "local", "openai", "wyoming", "light", "info"]
PLAUSIBLE += ["auto", "mock", "hey_jarvis", "kitchen-1", "tcp://localhost:10300", "tcp://h:0", "tcp://:1"]
PLAUSIBLE += ["http://x", "https://h/v1", "a/b", "home/#", "x\0y"]
plausible = st.sampled_from(PLAUSIBLE)
scalars = st.one_of(
    plausible,
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),  # larger than a float can hold
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["nan", "inf", "-inf", "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z"]).map(Raw),
    st.text(no_surrogates, max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=5,
)


def typed(tp: Any) -> st.SearchStrategy[Any]:
    """A value of the field's own type, often in range: documents that should load, and do."""
    if get_origin(tp) is Literal:
        return st.sampled_from(get_args(tp))
    simple: dict[Any, st.SearchStrategy[Any]] = {
        bool: st.booleans(),
        int: st.one_of(st.integers(0, 10), st.integers(-5, 70_000)),
        float: st.floats(-0.5, 3.0),
        str: st.text(st.sampled_from("abc-_01"), min_size=1, max_size=8),
    }
    return simple.get(tp, values)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):  # known keys with values of their own type
        for name in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=3, unique=True)):
            hints = FIELDS[name]
            chosen = draw(st.lists(st.sampled_from(sorted(hints)), max_size=3, unique=True))
            doc[name] = {f: draw(typed(hints[f])) for f in chosen}
        return doc
    for name in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=4, unique=True)):
        fields = sorted(FIELDS[name])
        keys = st.one_of(
            st.sampled_from(fields), st.sampled_from(fields).map(lambda f: f + "x"), st.text(max_size=10)
        )
        doc[name] = draw(st.dictionaries(keys, values, max_size=4))
    for name in draw(st.lists(st.sampled_from(TOP_SCALARS), max_size=2, unique=True)):
        doc[name] = draw(values)
    if draw(st.integers(0, 9)) == 0:  # an unknown section or top-level key
        doc[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in HINTS))] = draw(values)
    return doc


# -------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def cfg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config") / "config.toml"


def resolves(table: Any, key: str) -> bool:
    """Whether a dotted key like ``intents.devices[0].kind`` names something in ``table`` (key names may
    themselves contain dots or brackets, so every split is tried)."""
    if key == "":
        return True
    m = re.match(r"\[(\d+)\]", key)
    if m and isinstance(table, list):
        i = int(m.group(1))
        return i < len(table) and resolves(table[i], key[m.end() :].removeprefix("."))
    if isinstance(table, Mapping):
        for k in table:
            for name in (str(k), json.dumps(str(k))):  # an odd key name is quoted in the dotted key
                rest = key[len(name) :]
                ok = key.startswith(name) and (rest == "" or rest[0] in ".[")
                if ok and resolves(table[k], rest.removeprefix(".")):
                    return True
    return False


def is_field(key: str) -> bool:
    """A real ``section.field`` (cross-field checks name a field the document may not set)."""
    section, _, field = key.partition(".")
    return key in HINTS or field.split("[")[0].split(".")[0] in FIELDS.get(section, {})


def check_error(exc: ConfigError) -> None:
    message = str(exc)
    assert type(exc) is ConfigError
    assert exc.key and exc.key in message and message == f"config: {exc.key}: {exc.message}"
    assert exc.message.strip() and "\n" not in message and len(message) < 1000, message


def unknown_key(doc: Mapping[str, Any]) -> bool:
    """Whether the document has a key no section knows (it must be rejected)."""
    for name, value in doc.items():
        if name not in HINTS:
            return True
        if name in SECTIONS and isinstance(value, dict) and set(value) - set(FIELDS[name]):
            return True
    return False


def same(loaded: Any, given_value: Any) -> bool:
    if isinstance(given_value, float) and math.isnan(given_value):
        return isinstance(loaded, float) and math.isnan(loaded)
    return bool(loaded == given_value)


# ------------------------------------------------------------------------------------------ properties


@FUZZ_DOCS
@given(doc=documents())
@example(doc={"wake": {"threshold": 10**400}})  # float() would overflow
@example(doc={"mqtt": {"port": "1883"}})
@example(doc={"gpio": {"board": {"a": 1}}})  # not a string: no profile lookup
@example(doc={"asr": {"backend": "wyoming", "uri": "tcp://h:99999"}})
@example(doc={"mqtt": {"prefix": "a\0b"}})
def test_any_document_loads_or_names_the_key(cfg_file: Path, doc: dict[str, Any]) -> None:
    text = "\n".join(toml_lines(doc)) + "\n"
    cfg_file.write_text(text, encoding="utf-8")
    table = tomllib.loads(text)  # the generator writes valid TOML
    try:
        cfg = load(cfg_file, environ={})
    except ConfigError as exc:
        check_error(exc)
        assert resolves(table, exc.key) or is_field(exc.key), exc
        event("rejected: unknown key" if "unknown key" in exc.message else "rejected: bad value")
        return
    event("loaded")
    assert not unknown_key(table), "an unknown key was accepted"
    for name, section in table.items():  # the loaded config holds what the file says
        if name in SECTIONS:
            for field, value in section.items():
                if is_scalar(FIELDS[name][field]):
                    assert same(getattr(getattr(cfg, name), field), value), (name, field)
        elif is_scalar(HINTS[name]):
            assert same(getattr(cfg, name), section)


env_names = st.one_of(
    st.sampled_from(sorted(f"{s}__{f}" for s, hints in FIELDS.items() for f in hints)),
    st.sampled_from(TOP_SCALARS),
    st.sampled_from(["wake__thresholds__hey_jarvis", "mqtt", "mqtt__port__x", "", "__x", "mqtt__", "a___b"]),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz_0123456789"), max_size=16),
).map(lambda n: "EDGE_VOICE_" + n.upper())
env_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["0.5", "true", "[1, 2]", '["a"]', "{a = 1}", "inf", "nan", '"quoted"', "1883", "5\nx = 1"]
    ),
    st.sampled_from(["9" * 5000, "[" * 3000, "1" + "0" * 400, "1979-05-27", ""]),
)


@FUZZ
@given(environ=st.dictionaries(env_names, env_values, max_size=4))
@example(environ={"EDGE_VOICE_DEVICE_ID": "1234"})  # a string field takes digits as text
@example(environ={"EDGE_VOICE_WAKE__THRESHOLD": "9" * 5000})
@example(environ={"EDGE_VOICE_WAKE__THRESHOLD": "[" * 3000})
@example(environ={"EDGE_VOICE_INTENTS__LANGUAGE": "9" * 5000})  # a choice names its value briefly
@example(environ={"EDGE_VOICE_MQTT": "5", "EDGE_VOICE_MQTT__PORT": "1"})
@example(environ={"EDGE_VOICE_MQTT__PORT": "1", "EDGE_VOICE_MQTT": "5"})
@example(environ={"EDGE_VOICE_MQTT__PORT": "5\nx = 1"})
@example(environ={"EDGE_VOICE___X": "1"})
def test_any_env_override_loads_or_names_the_key(cfg_file: Path, environ: dict[str, str]) -> None:
    cfg_file.write_text("", encoding="utf-8")
    try:
        cfg = load(cfg_file, environ=environ)
    except ConfigError as exc:
        check_error(exc)
        # the key is the dotted path a variable spells (naming the variable), a field a cross-field check
        # names, or the malformed variable itself
        message = str(exc)
        conflict = "more than one variable" in message or "both as a value and a table" in message
        paths = {n: n.removeprefix("EDGE_VOICE_").lower().replace("__", ".") for n in environ}
        direct = [n for n, p in paths.items() if exc.key == p]
        if direct and not conflict:
            assert any(f"(set by ${n})" in message for n in direct), message
        assert exc.key in environ or "(set by $EDGE_VOICE_" in message or conflict or is_field(exc.key), exc
        event("rejected")
        return
    event("loaded")
    for name, raw in environ.items():  # a string field holds the text as given
        section, _, field = name.removeprefix("EDGE_VOICE_").lower().partition("__")
        tp = FIELDS[section].get(field) if section in FIELDS else HINTS.get(section) if not field else None
        if tp is str:
            value = getattr(getattr(cfg, section), field) if field else getattr(cfg, section)
            quoted = raw.startswith('"') and raw.endswith('"') and len(raw) >= 2
            assert value == raw or (quoted and value == tomllib.loads(f"v = {raw}")["v"])


BAD_LINES = ["x = = 1", "[unclosed", "just_a_key", 'a = "unterminated', "= 1", "a = 1 2", "[[]]", "a = 1,"]


@FUZZ_BROKEN
@given(doc=documents(), at=st.integers(min_value=0), bad=st.sampled_from(BAD_LINES))
def test_malformed_toml_names_the_file_and_line(
    cfg_file: Path, doc: dict[str, Any], at: int, bad: str
) -> None:
    lines = toml_lines(doc)
    at %= len(lines) + 1
    lines.insert(at, bad)
    cfg_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(cfg_file, environ={})
    check_error(info.value)
    assert info.value.key == str(cfg_file) and "not valid TOML" in str(info.value)
    assert f"at line {at + 1}," in str(info.value), (lines, str(info.value))


@FUZZ_BROKEN
@given(
    doc=documents(),
    at=st.integers(min_value=0),
    junk=st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80"]),
)
def test_non_utf8_names_the_file_and_line(cfg_file: Path, doc: dict[str, Any], at: int, junk: bytes) -> None:
    lines = [line.encode() for line in toml_lines(doc)] or [b""]
    at %= len(lines)
    lines[at] += b" # " + junk  # in a comment: only the encoding is wrong
    cfg_file.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(ConfigError) as info:
        load(cfg_file, environ={})
    check_error(info.value)
    assert info.value.key == str(cfg_file) and f"not UTF-8 (byte 0x{junk[0]:02x} at line {at + 1})" in str(
        info.value
    )


@settings(FUZZ, max_examples=scaled(300))
@given(text=st.text(max_size=200))
def test_any_text_loads_or_names_the_file(cfg_file: Path, text: str) -> None:
    cfg_file.write_text(text, encoding="utf-8")
    try:
        load(cfg_file, environ={})
    except ConfigError as exc:
        check_error(exc)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("x = " + "9" * 5000, "a number has too many digits (at line 1)"),
        ("a = 1\nx = " + "[" * 3000 + "]" * 3000, "nested too deeply (near line 2)"),
        ("a = 1\nb = 2\nc = = 3\n", "at line 3,"),
    ],
)
def test_parser_limits_are_config_errors(cfg_file: Path, content: str, fragment: str) -> None:
    cfg_file.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(fragment)) as info:
        load(cfg_file, environ={})
    assert info.value.key == str(cfg_file)


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read: Is a directory") as info:
        load(tmp_path, environ={})
    assert info.value.key == str(tmp_path)
    profile = tmp_path / "board.toml"
    profile.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"gpio\.board: cannot read profile .*board\.toml"):
        load(None, environ={"EDGE_VOICE_CONFIG": "/dev/null", "EDGE_VOICE_GPIO__BOARD": str(profile)})
