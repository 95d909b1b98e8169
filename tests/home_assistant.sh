#!/bin/sh
# A real Home Assistant core for tests/integration/test_home_assistant.py, in its own venv (its ~60 exact pins
# — aiohttp, cryptography, orjson, … — are not the daemon's and must not leak into it). 2024.3.3 is the newest
# core that installs on Python 3.11. The tests run it offline on loopback with `--skip-pip`, so every
# integration the test config loads must have its requirements here:
#   josepy<2                    acme (via hass-nabucasa) breaks on josepy 2: every HTTP request answers 500
#   home-assistant-frontend     onboarding and the config-flow views hang off `frontend`
#   psutil-home-assistant, SQLAlchemy, fnv-hash-fast   recorder (websocket_api's after-dependency)
#   securetar                   backup; janus: file_upload (mqtt's dependency); Pillow: image_upload (person)
#   paho-mqtt 1.6.1             the MQTT integration; hassil + home-assistant-intents: conversation
#
# Usage: tests/home_assistant.sh [VENV_DIR]
#   default VENV_DIR: $EDGE_VOICE_HA_VENV, else ${XDG_CACHE_HOME:-~/.cache}/edge-voice/ha-venv
#   PYTHON=... picks the interpreter (default python3; 3.11 or 3.12).
# Idempotent: exits at once when the venv already holds exactly these pins (a stamp file records them).
set -eu

PINS="homeassistant==2024.3.3 josepy==1.14.0 home-assistant-frontend==20240307.0 psutil-home-assistant==0.0.1 \
SQLAlchemy==2.0.27 fnv-hash-fast==0.5.0 securetar==2024.2.1 janus==1.0.0 Pillow==10.2.0 paho-mqtt==1.6.1 \
hassil==1.6.1 home-assistant-intents==2024.3.12"
VENV="${1:-${EDGE_VOICE_HA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-voice/ha-venv}}"
STAMP="$VENV/.edge-voice-pins"

if [ -x "$VENV/bin/hass" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$PINS" ]; then
    exit 0
fi
"${PYTHON:-python3}" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
# Core first, alone: its package_constraints.txt pins the whole tree (bluetooth, aiohttp, …). Without it
# pip's resolver backtracks through hundreds of sdist builds (measured: >10 min, never finished).
$PIP install --quiet --no-deps homeassistant==2024.3.3
CONSTRAINTS="$("$VENV/bin/python" -c 'import homeassistant, os; print(os.path.join(os.path.dirname(homeassistant.__file__), "package_constraints.txt"))')"
# shellcheck disable=SC2086  # PINS is a list of requirement specifiers
$PIP install --quiet --prefer-binary -c "$CONSTRAINTS" $PINS
echo "$PINS" >"$STAMP"
echo "home assistant installed in $VENV" >&2
