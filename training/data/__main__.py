"""``python -m training.data ...``: build a dataset (see ``training.data.cli``)."""

import sys

from training.data.cli import main

sys.exit(main())
