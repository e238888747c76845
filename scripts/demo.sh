#!/usr/bin/env bash
# The main job, from a fresh machine: provision, then `genet demo` (see README.md).
# Output goes to ./demo-output unless a directory is given: `bash scripts/demo.sh /tmp/out`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
exec .venv/bin/genet demo --out "${1:-demo-output}"
