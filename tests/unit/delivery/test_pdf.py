"""The bounded render's child starts light: it imports WeasyPrint, not the report's data code
(revisit.delivery.pdf), so a small report's render is not mostly interpreter start."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_render_child_module_imports_neither_pandas_nor_numpy():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-c", "import sys, revisit.delivery.pdf\n"
         "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow', 'revisit.delivery.report')"
         " if m in sys.modules))"],
        capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"
