"""Board profiles: the config a board's wiring implies (pins, pin factory, audio devices), packaged as
TOML under ``edge_voice/data/boards`` and merged under the user's own keys. Plain data: reading a
profile touches no GPIO (``hw/pins.py`` does that)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

# package data, so a wheel or a non-editable install carries the profiles
BOARDS_DIR: Traversable = resources.files("edge_voice").joinpath("data", "boards")


class BoardError(ValueError):
    """No such profile, or not valid TOML. The message says which and why."""


def board_names() -> list[str]:
    """The packaged profiles, by the name ``gpio.board`` takes."""
    return sorted(p.name.removesuffix(".toml") for p in BOARDS_DIR.iterdir() if p.name.endswith(".toml"))


def board_profile_path(name: str) -> Traversable:
    """A packaged profile by name, or the user's own file when ``name`` ends in ``.toml``."""
    path: Traversable = Path(name) if name.endswith(".toml") else BOARDS_DIR / f"{name}.toml"
    if not path.is_file():
        known = board_names()
        raise BoardError(f"gpio.board: no profile {name!r}; known: {', '.join(known) or 'none'}")
    return path


def load_board_profile(name: str) -> dict[str, Any]:
    """The config tables of a board profile (everything but its ``[profile]`` notes)."""
    try:
        table = tomllib.loads(board_profile_path(name).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"gpio.board: profile {name!r} is not valid TOML: {exc}") from None
    table.pop("profile", None)
    return table


def board_notes(name: str) -> dict[str, Any]:
    """The ``[profile]`` table (name, notes, supported/unsupported features) for humans and doctor."""
    table = tomllib.loads(board_profile_path(name).read_text(encoding="utf-8"))
    notes: dict[str, Any] = table.get("profile", {})
    return notes


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def merge_board_profile(table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """If ``table["gpio"]["board"]`` (or ``$EDGE_VOICE_GPIO__BOARD``) names a profile, return the profile
    with ``table`` merged over it — the user's own keys always win. Otherwise ``table`` unchanged."""
    environ = os.environ if environ is None else environ
    gpio = table.get("gpio", {})
    board = environ.get("EDGE_VOICE_GPIO__BOARD") or (
        gpio.get("board", "") if isinstance(gpio, Mapping) else ""
    )
    if not board:
        return dict(table)
    return _merge(load_board_profile(str(board)), table)
