"""``python -m training`` is ``python -m training.train``: train a model into a run directory."""

import sys

from training.train import main

sys.exit(main())
