"""``python -m diffrep``: the console command."""

import sys

from .app.cli import main

sys.exit(main())
