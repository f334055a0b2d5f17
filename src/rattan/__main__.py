"""``python -m rattan``: the ``rattan`` command line."""

import sys

from rattan.cli import main

sys.exit(main())
