#!/usr/bin/env bash
# The one entry point on a fresh Debian machine: installs what sitepulse needs, then
#   ./run.sh demo [options]   runs the embedded demo (broker + InfluxDB + worker + sites)
#   ./run.sh test [pytest args] runs the test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

setup() {
  if ! command -v influxd >/dev/null 2>&1; then
    echo "== installing Debian's influxdb (sitepulse starts its own influxd; the packaged service stays off)"
    apt_install influxdb
    as_root systemctl disable --now influxdb >/dev/null 2>&1 || true
  fi
  # The scheduling bulletin: Chromium prints its PDF, Noto CJK draws its Chinese text.
  # grep reads all of fc-list's output: with -q it would stop at the first match, and
  # fc-list's SIGPIPE would fail the pipeline (pipefail) and reinstall every time.
  if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep NotoSansCJK >/dev/null; then
    echo "== installing chromium and fonts-noto-cjk (the report's PDF and Chinese font)"
    apt_install chromium fonts-noto-cjk fontconfig
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
  fi
  echo "== installing sitepulse into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
}

command="${1:-}"
shift || true
case "$command" in
  demo) setup; exec .venv/bin/sitepulse demo "$@" ;;
  test)
    setup
    # The tests validate docker-compose.yml with Debian's docker-compose.
    command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
    # ... and turn the report's PDF into images and text with poppler.
    command -v pdftoppm >/dev/null 2>&1 || apt_install poppler-utils
    exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: ./run.sh demo|test [options]" >&2; exit 2 ;;
esac
