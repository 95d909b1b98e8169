#!/bin/sh
# Regenerate the hash-locked requirements (`make lock` runs this with the pinned uv from tools.lock).
# Each *.txt here holds the readable top-level pins; each *.lock beside it is generated from it: every
# package, dependencies included, at one version with the sha256 of each of its files on the index, in
# one universal resolution (any platform, Python >= 3.11, environment markers where they differ).
# The service venv installs build + runtime + models (+ audio); `make test` adds dev on top.
# Then every lock the service installs is dry-run installed for each target board, wheels only, so a
# package without a wheel for Raspberry Pi OS (aarch64) or for Python 3.13 (trixie) fails here, not on the Pi.
set -eu
UV="${1:?usage: lock.sh path/to/uv}"
cd "$(dirname "$0")/.."
R=requirements
compile() {  # compile <name> [uv options]: requirements/<name>.txt -> requirements/<name>.lock
  name=$1; shift
  "$UV" pip compile --quiet --universal --generate-hashes --python-version 3.11 \
    --custom-compile-command "make lock" "$@" "$R/$name.txt" -o "$R/$name.lock"
}
compile runtime
# model-only packages: installed --no-deps, so their dependencies are not resolved (nor installed)
compile models --no-deps
compile audio --no-deps
# GPIO on a Raspberry Pi (make setup installs it only there): environment markers pick lgpio by Python
compile gpio-pi
# shared packages (numpy, packaging, ...) at the runtime lock's versions, so the locks install together
compile build -c "$R/runtime.lock"
compile dev -c "$R/runtime.lock"
compile tools
# pip, not uv, judges the result: uv ignores Requires-Python upper bounds (backports-strenum 1.3.1 says
# < 3.11 and a uv check passes it); pip's dry run applies them and every wheel tag, downloading metadata only
PY="$(dirname "$UV")/python"
for arch in x86_64 aarch64; do
  platforms=""
  for glibc in 36 35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17; do  # bookworm's glibc is 2.36
    platforms="$platforms --platform manylinux_2_${glibc}_$arch"
  done
  for python in 3.11 3.13; do
    names="build runtime models"
    # a Raspberry Pi's GPIO: aarch64 wheels only; checked for 3.11 alone, since pip evaluates the markers
    # that pick lgpio or adafruit-lgpio against the interpreter running it, not --python-version
    [ "$arch" = aarch64 ] && [ "$python" = 3.11 ] && names="$names gpio-pi"
    for name in $names; do
      # pip judges markers by the interpreter running it (x86_64 here): a package marked x86_64-only
      # (moonshine-cpp) is left out of the aarch64 check by hand, as pip on a Pi leaves it out
      lock="$R/$name.lock"
      if [ "$arch" != x86_64 ]; then
        lock="$(mktemp)"
        awk '/^[^ #].*platform_machine == .x86_64./ {skip=1; next} /^[^ ]/ {skip=0} !skip' "$R/$name.lock" > "$lock"
      fi
      # shellcheck disable=SC2086
      "$PY" -m pip install --quiet --dry-run --ignore-installed --no-deps --only-binary=:all: \
        --require-hashes $platforms --platform "manylinux2014_$arch" --platform "linux_$arch" \
        --python-version "$python" --implementation cp --target "$(mktemp -d)" -r "$lock" \
        || { echo "lock: $name.lock does not install on $arch, Python $python" >&2; exit 1; }
    done
  done
done
echo "lock: requirements/*.lock regenerated and checked for x86_64 and aarch64, Python 3.11 and 3.13"
