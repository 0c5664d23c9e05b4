"""Where the project's files and the run outputs live; one place so nothing hard-codes a path."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # plugins/: what puts `revisit` on sys.path
PROJECT_ROOT = PACKAGE_PARENT.parent
INCLUDE_DIR = PROJECT_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
TEMPLATES_DIR = INCLUDE_DIR / "templates"


def output_root() -> Path:
    """The output root: env REVISIT_OUTPUT_DIR, else output/ in the project."""
    return Path(os.environ.get("REVISIT_OUTPUT_DIR") or PROJECT_ROOT / "output").resolve()
