#!/usr/bin/env bash
# Everything a fresh machine needs, idempotent: Java 17 (Spark), wrk (the API bench's load
# generator, for `make bench` and the bench smoke test), uv, the locked environment.
# `scripts/setup.sh test` also installs what the test suite drives: Chromium + ChromeDriver
# (dashboard browser test) and Debian's docker-compose (offline compose validation).
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9

say() { printf '[setup] %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "cannot install $* (need root and apt-get): install it yourself"; return 1
  fi
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v java >/dev/null || ! java -version 2>&1 | grep -qE 'version "(17|21)'; then
  say "Java 17 is required by Spark and was not found: installing openjdk-17-jre-headless"
  apt_install openjdk-17-jre-headless || { say "ERROR: install a Java 17 runtime"; exit 1; }
fi

command -v wrk >/dev/null || apt_install wrk || true

if [ "${1:-}" = "test" ]; then
  command -v chromium >/dev/null && command -v chromedriver >/dev/null || apt_install chromium chromium-driver || true
  command -v docker-compose >/dev/null || apt_install docker-compose || true
  command -v promtool >/dev/null || apt_install prometheus || true
fi

if ! command -v uv >/dev/null || [ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]; then
  say "installing uv $UV_VERSION"
  python3 -m pip install -q "uv==$UV_VERSION"
fi

export UV_PYTHON_DOWNLOADS=never
uv sync --frozen --python python3.11 -q
if [ "${1:-}" = "test" ]; then
  # checkov pins boto3 exactly, so it gets an environment of its own, from hashed pins
  [ -x .venv-checkov/bin/python ] || uv venv -q --python python3.11 .venv-checkov
  uv pip sync -q --python .venv-checkov/bin/python --require-hashes tools/checkov/requirements.txt
fi
say "environment ready: $(.venv/bin/python --version), $(java -version 2>&1 | head -1)"
