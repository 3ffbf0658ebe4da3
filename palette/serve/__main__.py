"""``python -m palette.serve``: the same as ``palette serve``."""
import sys

from .supervisor import main

sys.exit(main())
