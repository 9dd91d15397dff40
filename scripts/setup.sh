#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine (run as root, or with the apt packages
# already present): system packages, then the project virtualenv at .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  softhsm2 opensc pcscd vsmartcard-vpcd libpcsclite-dev pcsc-tools
  gnupg scdaemon swig libzbar0 make gcc python3-dev python3-venv
  poppler-utils
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
stamp=.venv/.coldvault-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating virtualenv .venv"
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv (pinned by constraints.txt)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
  echo "$want" > "$stamp"
fi
# Byte-compile the project's own modules (only what changed since the last run). Every
# coldvault command is a fresh process; where PYTHONDONTWRITEBYTECODE is set (CI images often
# set it) Python would otherwise compile every module from source at each start (~0.3 s of CPU).
.venv/bin/python -m compileall -q -j 0 coldvault appliance ceremony_scripts hardware_emulators benchmarks >/dev/null
echo "setup: ready"
