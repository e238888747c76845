"""player package of genet-testbed."""
