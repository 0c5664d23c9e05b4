"""Shared fixtures: the default policy and its calendar, built once per session."""

from __future__ import annotations

import os

import pytest

from revisit.config.policy import Policy, load_policy
from revisit.rules.calendar import BusinessCalendar


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="session")
def calendar(policy: Policy) -> BusinessCalendar:
    return BusinessCalendar(policy.calendar)


def service_unavailable(name: str, reason: str) -> None:
    """Skip on a laptop without the service; under CI a missing service is a failure."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{name} is required under CI but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")
