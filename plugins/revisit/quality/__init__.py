"""The quality gate: Great Expectations suites, quarantine with reasons, the summary."""
