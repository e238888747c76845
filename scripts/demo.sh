#!/usr/bin/env bash
# The main job, from a fresh machine: provision, then `genet run examples/quickstart.toml` (see README.md):
# both use cases end to end (short training, export, simulation, emulation, a deploy campaign on the local
# SSH testbed, report). Output goes to ./demo-output unless a directory is given: `bash scripts/demo.sh /tmp/out`.
# Rerunning resumes and redoes only what changed. The report: demo-output/report/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
exec .venv/bin/genet run examples/quickstart.toml --out "${1:-demo-output}"
