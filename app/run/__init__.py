"""`genet run`: the main job from one config (see app/run/cli.py and docs/run-config.md)."""
