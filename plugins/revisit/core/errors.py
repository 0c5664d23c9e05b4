"""The one error type the stages raise for the bridge to judge: may a retry help?

Airflow retries a failed task; some failures (a quality stop, a refused address, a report that
may already have reached its head) will fail the same way every time, or must not be repeated.
A stage says which by the error's own `retryable`, and the bridge (revisit.bridge.tasks) turns
a non-retryable one into a failure without retries, in one place for both DAGs.
"""

from __future__ import annotations


class RevisitError(RuntimeError):
    """A failure of a stage; `retryable` is False when another try cannot or must not help."""

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class BadParam(RevisitError):
    """A run param (params.call_date, params.month) that no retry can fix: it names the param
    and the value, and fails the task at once."""

    retryable = False

    def __init__(self, param: str, value: object, expected: str) -> None:
        super().__init__(f"params.{param} = {value!r} is not {expected}")
        self.param = param
        self.value = value


__all__ = ["BadParam", "RevisitError"]
