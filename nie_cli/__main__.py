"""``python -m nie_cli ARGS``: the ``nie`` command without the console script (``ray job submit``)."""

import sys

from nie_cli.main import main

sys.exit(main())
