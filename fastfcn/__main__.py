"""``python -m fastfcn ...``: the same as the ``fastfcn`` command."""

import sys

from .cli import main

sys.exit(main())
