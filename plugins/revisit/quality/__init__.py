"""The quality gate: Great Expectations suites, quarantine with reasons, the summary.

revisit.quality.gate runs it (run_quality_gate, gate_or_stop, QualityStop); suites, validation,
failures, references, tables, quarantine and summary are its parts.
"""
