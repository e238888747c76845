"""emulation package of genet-testbed."""
