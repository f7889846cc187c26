"""Where the benchmarks find the public corpora: ``../shared/data`` beside the checkout.

``SLMBOT_SHARED_DATA`` points elsewhere, e.g. at a copy carried to a lent GPU machine, where
the folder beside the checkout does not travel.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SLMBOT_SHARED_DATA", ROOT.parent / "shared" / "data"))
