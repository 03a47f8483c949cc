#!/usr/bin/env bash
# Set up everything rayfarm needs on a fresh Debian machine (run as root or with sudo rights):
# system packages (Blender for rendering, bubblewrap to confine render jobs, ffmpeg for preview movies), the project's venv, and the
# official Renderbus SDK's own venv (it pins old libraries, so it never shares ours). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
# bubblewrap: nodes confine render jobs; chromium: the dashboard tests (tests/web) drive it headless;
# ffmpeg: preview movies; postgresql brings pg_dump/pg_restore (`rayfarm backup`/`restore`); util-linux (setpriv)
# and passwd (useradd): the many-machines tests run nodes as a throwaway user; systemd: systemd-analyze checks
# the units in deploy/
PACKAGES=(blender bubblewrap postgresql chromium ffmpeg util-linux passwd systemd)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade "pip>=24" >/dev/null
.venv/bin/python -m pip install -q -e ".[server,test]"  # a render node alone needs only `pip install rayfarm`

# The official SDK, for compatibility tests: its own venv (Python <= 3.11, setuptools < 81).
if [ ! -x .venv-rayvision/bin/python ] || ! .venv-rayvision/bin/python -c "import rayvision_api" 2>/dev/null; then
  rm -rf .venv-rayvision
  "$PYTHON" -m venv .venv-rayvision
  .venv-rayvision/bin/python -m pip install -q "setuptools<81" "rayvision-api==3.0.4.3"
fi
echo "Set up: .venv (rayfarm) and .venv-rayvision (official SDK)."
