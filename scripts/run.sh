#!/usr/bin/env bash
# The main job on the embedded default: install, then analyse the bundled samples with cost receipts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/frugalsense samples samples >/dev/null
.venv/bin/frugalsense analyze samples/photo.jpg samples/receipt.png samples/letter.pdf samples/voice-note.ogg "$@"
