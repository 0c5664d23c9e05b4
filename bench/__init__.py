"""Reproducible benchmarks of the Revisit pipeline (see bench/README.md).

Importing the package puts plugins/ on sys.path, so `python -m bench.run` works from the
repository root without PYTHONPATH (the domain package is imported as `revisit`, as in Airflow).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))
