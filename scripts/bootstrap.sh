#!/usr/bin/env bash
# Idempotent set-up used by both README commands: system packages (when we can install them),
# the virtual environment and the pinned Python packages. Fast when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Debian packages: mysqlclient's headers (Airflow's MySQL provider), Pango for WeasyPrint,
# a CJK font so Chinese renders in PDFs, poppler-utils for PDF checks.
SYSTEM_PACKAGES=(pkg-config default-libmysqlclient-dev libpango-1.0-0 libpangoft2-1.0-0
                 libharfbuzz-subset0 fonts-noto-cjk poppler-utils)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" != none ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "bootstrap: please install these system packages (Debian/Ubuntu names): ${missing[*]}" >&2
    echo "bootstrap: on macOS: brew install pkg-config mysql-client pango poppler; add a CJK font" >&2
  fi
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PYTHON="$candidate"; break
    fi
  done
fi
[ -n "$PYTHON" ] || { echo "bootstrap: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
# The dev venv gets requirements-dev.txt: the runtime pins (requirements.txt, which it includes,
# and which alone go into the Docker image) plus the test, lint and bench tools. The stamp
# hashes both files, so a change to either reinstalls.
stamp=.venv/.requirements.sha256
want="$(sha256sum requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing pinned requirements into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
