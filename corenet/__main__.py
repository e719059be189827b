"""``python -m corenet ...``: the same command line as the ``corenet`` script."""
import sys

from corenet.cli import main

sys.exit(main())
