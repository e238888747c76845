"""Trainable agents behind one interface (genet/agents/base.py) and one registry (genet/agents/registry.py):
PPO, behaviour cloning and DAgger. Importing this package loads no torch."""
