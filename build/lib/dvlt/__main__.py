"""`python -m dvlt ...`: see dvlt.cli."""

import sys

from .cli import main

sys.exit(main())
