#!/usr/bin/env bash
# The main job, from a fresh machine: provision, then `genet run examples/quickstart.toml` (see README.md):
# both use cases end to end (short training, export, simulation, emulation, a deploy campaign on the local
# SSH testbed, report). Output goes to ./demo-output unless a directory is given: `bash scripts/demo.sh /tmp/out`.
# Options after the directory go to `genet run` (`bash scripts/demo.sh demo-output --dry-run`: the plan only);
# GENET_DEMO_CONFIG=FILE runs another config the same way (tests/test_readme_commands.py: a small budget).
# Rerunning resumes and redoes only what changed. The report: demo-output/report/index.html; the time of
# each stage (wall and CPU) is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
exec .venv/bin/genet run "${GENET_DEMO_CONFIG:-examples/quickstart.toml}" --out "${1:-demo-output}" "${@:2}"
