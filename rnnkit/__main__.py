"""``python -m rnnkit``: the same as the ``rnnkit`` console script."""

import sys

from rnnkit.cli import main

sys.exit(main())
