#!/usr/bin/env bash
# Install edge-voice as a systemd service (what `make install` runs, as root). Idempotent.
#   1. a system user `edge-voice` in the audio and gpio groups;
#   2. the code in $PREFIX (default /opt/edge-voice), owned by root, writable by root only: this checkout
#      is copied there (or used in place when it already is $PREFIX, then chowned too); the venv
#      (runtime + models from the hash-locked requirements/*.lock, no dev tools) and the derived models
#      are built with `make setup`. The service user can read and run it, never change it;
#   3. /etc/edge-voice/config.toml (fully commented defaults) and /etc/edge-voice/environment (secrets,
#      mode 0600), only if absent — an existing configuration is never overwritten;
#   4. the unit, daemon-reload, enable. Start it with `systemctl start edge-voice`.
# DESTDIR=/some/dir stages the whole install under that directory (for a package build, and for
# tests/integration/test_install_script.py): no user is created and systemctl is not called; the unit
# and config still name the final paths.
set -euo pipefail
umask 022

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
PREFIX="${EDGE_VOICE_PREFIX:-/opt/edge-voice}"
# edge-voice refuses EDGE_VOICE_* variables it does not know (exit 78): `make setup` must not see this one
unset EDGE_VOICE_PREFIX
TARGET="$DESTDIR$PREFIX"
SERVICE_USER=edge-voice
CACHE="$DESTDIR/var/cache/edge-voice"
CONF_DIR="$DESTDIR/etc/edge-voice"
UNIT_DST="$DESTDIR/etc/systemd/system/edge-voice.service"
# packages a dev checkout adds (`make test`); the service venv must not have them
DEV_TOOLS="pytest ruff mypy hypothesis"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: sudo $0 (or: make install)"
command -v make >/dev/null || die "make is missing: apt-get install make"

# 1. user and groups. Raspberry Pi OS and Jetson images have a `gpio` group (udev gives it the GPIO
#    devices); create it elsewhere so the unit's SupplementaryGroups= resolves.
if [ -z "$DESTDIR" ]; then
  getent group gpio >/dev/null || { say "creating group gpio"; groupadd --system gpio; }
  getent group audio >/dev/null || { say "creating group audio"; groupadd --system audio; }
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    say "creating system user $SERVICE_USER"
    useradd --system --user-group --home-dir "$CACHE" --no-create-home \
      --shell /usr/sbin/nologin --comment "edge-voice daemon" "$SERVICE_USER"
  fi
  usermod --append --groups audio,gpio "$SERVICE_USER"
fi
# a staged install without the user: the package's post-install step gives the cache to it
if id -u "$SERVICE_USER" >/dev/null 2>&1; then OWNER=$SERVICE_USER; else OWNER=root; fi

# 2. code + venv + models
has_dev_tools() { for tool in $DEV_TOOLS; do [ -e "$TARGET/.venv/bin/$tool" ] && return 0; done; return 1; }
if [ "$SRC" != "$TARGET" ]; then
  say "copying $SRC to $TARGET"
  mkdir -p "$TARGET"
  # an earlier install's venv with dev tools in it (before they moved out) is rebuilt from the locks
  if has_dev_tools; then say "removing $TARGET/.venv (it has dev tools)"; rm -rf "$TARGET/.venv"; fi
  # --no-same-owner: root's tar would otherwise keep the checkout owner's uid (and with it the right to
  # edit what root runs next); --no-same-permissions: the umask above drops group/world write bits
  tar -C "$SRC" --exclude=./.venv --exclude=./.venv-lock --exclude=./.git --exclude=./out \
      --exclude=./bench-results --exclude='*/__pycache__' --exclude=./.mypy_cache --exclude=./.ruff_cache \
      --exclude=./.pytest_cache --exclude=./.hypothesis -cf - . \
    | tar -C "$TARGET" --no-same-owner --no-same-permissions -xf -
else
  say "using the checkout in place: $TARGET"
  has_dev_tools && die "$TARGET/.venv has dev tools (make test ran here): 'make clean' first, or install a copy (EDGE_VOICE_PREFIX=/opt/edge-voice)"
fi
install -d -m 0750 -o "$OWNER" -g "$OWNER" "$CACHE" "$CACHE/models"
say "building the venv and models (make setup)"
EDGE_VOICE_MODELS_DIR="$CACHE/models" make -C "$TARGET" setup
chown -R "$OWNER:$OWNER" "$CACHE"
# root owns everything the service runs (code, venv, manifest, Makefile); nobody else may write it
chown -R root:root "$TARGET"
chmod -R go-w,a+rX "$TARGET"
[ -x "$TARGET/.venv/bin/edge-voice" ] || die "$TARGET/.venv/bin/edge-voice was not built"
has_dev_tools && die "$TARGET/.venv has dev tools: the service venv gets runtime + models only"

# 3. configuration (never overwritten)
install -d -m 0755 "$CONF_DIR" "$(dirname "$UNIT_DST")"
if [ ! -e "$CONF_DIR/config.toml" ]; then
  say "installing $CONF_DIR/config.toml (all defaults, commented)"
  install -m 0640 -o root -g "$OWNER" "$SRC/systemd/config.example.toml" "$CONF_DIR/config.toml"
else
  say "keeping the existing $CONF_DIR/config.toml"
fi
if [ ! -e "$CONF_DIR/environment" ]; then
  install -m 0600 -o root -g root /dev/null "$CONF_DIR/environment"
  printf '# Secrets for edge-voice (read by systemd, mode 0600).\n# EDGE_VOICE_MQTT_PASSWORD=\n# EDGE_VOICE_LLM_API_KEY=\n# EDGE_VOICE_HA_TOKEN=\n' \
    > "$CONF_DIR/environment"
fi

# 4. the unit (ExecStart follows $PREFIX)
say "installing $UNIT_DST"
sed "s|/opt/edge-voice/|$PREFIX/|g" "$SRC/systemd/edge-voice.service" > "$UNIT_DST.tmp"
chmod 0644 "$UNIT_DST.tmp"
mv "$UNIT_DST.tmp" "$UNIT_DST"
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable edge-voice.service
  say "enabled. Start: systemctl start edge-voice   Logs: journalctl -u edge-voice -f"
  say "check the setup first: sudo -u $SERVICE_USER $PREFIX/.venv/bin/edge-voice doctor"
else
  say "systemd is not running here (or DESTDIR is set): unit installed but not enabled"
fi
