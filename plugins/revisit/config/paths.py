"""Where the project's files and the run outputs live; one place so nothing hard-codes a path."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # plugins/: what puts `revisit` on sys.path
PROJECT_ROOT = PACKAGE_PARENT.parent
INCLUDE_DIR = PROJECT_ROOT / "include"
SQL_DIR = INCLUDE_DIR / "sql"
TEMPLATES_DIR = INCLUDE_DIR / "templates"


def output_location() -> str:
    """The output root as configured: env REVISIT_OUTPUT_DIR (a local path, file:///…, or an
    object-store URL such as s3://<conn_id>@bucket/prefix), else output/ in the project."""
    return os.environ.get("REVISIT_OUTPUT_DIR") or str(PROJECT_ROOT / "output")


def on_object_store(location: str) -> bool:
    """Whether `location` is an object-store URL (any scheme but file://)."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() != "file" and scheme.isascii() and scheme.isalnum()


def output_root() -> Path:
    """The output root as a local folder (file:// stripped); an object-store root has none:
    revisit.bridge.workspace gives each task a local mirror of it instead."""
    location = output_location()
    if on_object_store(location):
        raise ValueError(f"the output root {location} is on object storage, not a local folder")
    if location.lower().startswith("file://"):
        parsed = urlsplit(location)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"the output root {location} names another host")
        location = unquote(parsed.path)
    return Path(location).resolve()
