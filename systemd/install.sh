#!/usr/bin/env bash
# Install edge-voice as a systemd service (what `make install` runs, as root). Idempotent.
#   1. a system user `edge-voice` in the audio and gpio groups;
#   2. the code in $PREFIX (default /opt/edge-voice): this checkout is copied there, or used in place
#      when it already is $PREFIX; the venv and the derived models are built with `make setup`;
#   3. /etc/edge-voice/config.toml (fully commented defaults) and /etc/edge-voice/environment (secrets,
#      mode 0600), only if absent — an existing configuration is never overwritten;
#   4. the unit, daemon-reload, enable. Start it with `systemctl start edge-voice`.
# Never run by the test suite.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${EDGE_VOICE_PREFIX:-/opt/edge-voice}"
SERVICE_USER=edge-voice
CACHE=/var/cache/edge-voice
CONF_DIR=/etc/edge-voice
UNIT_DST=/etc/systemd/system/edge-voice.service

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: sudo $0 (or: make install)"
command -v make >/dev/null || die "make is missing: apt-get install make"

# 1. user and groups. Raspberry Pi OS and Jetson images have a `gpio` group (udev gives it the GPIO
#    devices); create it elsewhere so the unit's SupplementaryGroups= resolves.
getent group gpio >/dev/null || { say "creating group gpio"; groupadd --system gpio; }
getent group audio >/dev/null || { say "creating group audio"; groupadd --system audio; }
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  say "creating system user $SERVICE_USER"
  useradd --system --user-group --home-dir "$CACHE" --no-create-home \
    --shell /usr/sbin/nologin --comment "edge-voice daemon" "$SERVICE_USER"
fi
usermod --append --groups audio,gpio "$SERVICE_USER"

# 2. code + venv + models
if [ "$SRC" != "$PREFIX" ]; then
  say "copying $SRC to $PREFIX"
  mkdir -p "$PREFIX"
  tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude=./out --exclude=./bench-results \
      --exclude='*/__pycache__' --exclude=./.mypy_cache --exclude=./.ruff_cache --exclude=./.pytest_cache \
      -cf - . | tar -C "$PREFIX" -xf -
else
  say "using the checkout in place: $PREFIX"
fi
install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$CACHE" "$CACHE/models"
say "building the venv and models (make setup)"
EDGE_VOICE_MODELS_DIR="$CACHE/models" make -C "$PREFIX" setup
chown -R "$SERVICE_USER:$SERVICE_USER" "$CACHE"
chmod -R a+rX "$PREFIX"
[ -x "$PREFIX/.venv/bin/edge-voice" ] || die "$PREFIX/.venv/bin/edge-voice was not built"

# 3. configuration (never overwritten)
install -d -m 0755 "$CONF_DIR"
if [ ! -e "$CONF_DIR/config.toml" ]; then
  say "installing $CONF_DIR/config.toml (all defaults, commented)"
  install -m 0640 -o root -g "$SERVICE_USER" "$SRC/systemd/config.example.toml" "$CONF_DIR/config.toml"
else
  say "keeping the existing $CONF_DIR/config.toml"
fi
if [ ! -e "$CONF_DIR/environment" ]; then
  install -m 0600 -o root -g root /dev/null "$CONF_DIR/environment"
  printf '# Secrets for edge-voice (read by systemd, mode 0600).\n# EDGE_VOICE_MQTT_PASSWORD=\n# EDGE_VOICE_LLM_API_KEY=\n' \
    > "$CONF_DIR/environment"
fi

# 4. the unit (ExecStart follows $PREFIX)
say "installing $UNIT_DST"
sed "s|/opt/edge-voice/|$PREFIX/|g" "$SRC/systemd/edge-voice.service" > "$UNIT_DST.tmp"
chmod 0644 "$UNIT_DST.tmp"
mv "$UNIT_DST.tmp" "$UNIT_DST"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable edge-voice.service
  say "enabled. Start: systemctl start edge-voice   Logs: journalctl -u edge-voice -f"
  say "check the setup first: sudo -u $SERVICE_USER $PREFIX/.venv/bin/edge-voice doctor"
else
  say "systemd is not running here: unit installed but not enabled"
fi
