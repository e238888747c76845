"""``python -m player make-video | serve | play`` (player/cli.py)."""

import sys

from player.cli import main

sys.exit(main())
