"""genet package of genet-testbed."""
