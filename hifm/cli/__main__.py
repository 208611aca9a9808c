"""``python -m hifm.cli``: the ``hifm`` command line."""
import sys

from . import main

sys.exit(main())
