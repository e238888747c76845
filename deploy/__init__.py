"""deploy package of genet-testbed."""
