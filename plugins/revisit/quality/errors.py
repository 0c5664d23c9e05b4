"""The gate's two exceptions, apart so that every module of the gate can raise them without
importing the gate (revisit.quality.gate re-exports both: import them from there)."""

from __future__ import annotations

from revisit.core.errors import RevisitError


class QualityError(ValueError):
    """The frames or the suites cannot be checked (missing table or column, broken suite)."""


class QualityStop(RevisitError):
    """The gate stopped the run (a table failed too much, or a needed table is empty); the
    data will not change on a retry, so none is made."""

    retryable = False


__all__ = ["QualityError", "QualityStop"]
