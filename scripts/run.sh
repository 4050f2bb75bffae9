#!/usr/bin/env bash
# The main job on the embedded default: install, analyse the bundled samples (each with its cost receipt),
# then serve the HTTP API on 127.0.0.1:8000 (Ctrl-C stops it). Extra arguments go to `frugalsense serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/frugalsense samples samples >/dev/null
.venv/bin/frugalsense analyze -q samples/photo.jpg samples/receipt.png samples/letter.pdf samples/voice-note.ogg
exec .venv/bin/frugalsense serve "$@"
