#!/usr/bin/env bash
# Set up roomtone in ./.venv and run the demo or the tests.
#
#   bash infra/dev.sh demo [--quick]   set up, then run the end-to-end demo
#   bash infra/dev.sh test [pytest args] set up, then run the test suite
#   bash infra/dev.sh setup              set up only
#
# Setup is skipped when .venv already matches pyproject.toml. torch is installed first, as
# torch==2.13.0, so that no other requirement pulls a build of its own. Where pip has the CPU
# wheel at hand (these machines) that is what it takes; elsewhere PyPI's Linux wheel is the
# multi-GB CUDA build, so set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for the CPU one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ROOMTONE_VENV:-.venv}
PYTHON=${PYTHON:-python3}

setup() {
  local stamp="$VENV/.roomtone-setup" want
  want=$(cat pyproject.toml infra/dev.sh | sha256sum | cut -c1-16)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "roomtone needs Python >= 3.11 (found $("$PYTHON" --version)); set PYTHON=..." >&2; exit 1; }
  echo "setting up $VENV (first run takes a few minutes)" >&2
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  "$VENV/bin/python" -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("FLAC") is None)' \
    || echo "note: libFLAC is not installed, so FLAC is encoded through libsndfile (1.2x slower);" \
            "install it with: apt-get install flac (Debian, Ubuntu) or brew install flac (macOS)" >&2
  echo "$want" > "$stamp"
}

cmd=${1:-}
shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/roomtone" demo "$@" ;;
  test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
