"""``python -m balancer worker | serve | replay`` (balancer/cli.py)."""

import sys

from balancer.cli import main

sys.exit(main())
