"""``python -m pipeline`` is the same as the ``qcode`` console script."""
import sys

from pipeline.cli import main

sys.exit(main())
