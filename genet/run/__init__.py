"""`genet run`: the main job from one config (see genet/run/cli.py and docs/run-config.md)."""
