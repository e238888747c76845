"""sender package of genet-testbed."""
