"""The CRM's booleans (0/1 by the schema) as the delivery code reads them, one rule.

A CRM adapter may hand over 1, "1", True or "yes"; a missing value is not true: an agent whose
`active` is empty gets no e-mail rather than a surprise one.
"""

from __future__ import annotations

import pandas as pd


def is_true(value: object) -> bool:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "yes", "y")
    return bool(value)


__all__ = ["is_true"]
