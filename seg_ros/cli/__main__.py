"""``python -m seg_ros.cli``: the ``seg-ros`` command."""

import sys

from seg_ros.cli import main

sys.exit(main())
