"""`python -m revisit <command>` (PYTHONPATH=plugins): see revisit.cli."""

import sys

from revisit.cli import main

sys.exit(main())
