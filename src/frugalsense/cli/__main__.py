"""``python -m frugalsense.cli``: the same commands as the ``frugalsense`` script."""

import sys

from frugalsense.cli import main

sys.exit(main())
