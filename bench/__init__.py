"""Reproducible benchmarks of the Revisit pipeline (see bench/README.md).

Importing the package puts plugins/ on sys.path, so `python -m bench.run` works from the
repository root without PYTHONPATH (the domain package is imported as `revisit`, as in Airflow).
BENCH_SOURCE (set by `bench.run --ab`) names another checkout whose plugins/ is measured instead
(the A side of an A/B run: the same harness, the other revision's code).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(os.environ.get("BENCH_SOURCE") or ROOT)
PLUGINS = SOURCE / "plugins"
if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))
