"""``python -m track_backends.cli``: the same as the ``track-backends`` script."""

import sys

from .main import main

sys.exit(main())
