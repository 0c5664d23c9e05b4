"""Running a suite with Great Expectations (GX Core 1.x): one ephemeral, quiet context per gate
run, one pandas batch per table, or per chunk of GX_CHUNK_ROWS rows for the expectations whose
verdict on a row depends on that row alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from revisit.quality.errors import QualityError
from revisit.quality.suites import suite_columns

GX_CHUNK_ROWS = 1_000_000
# Expectations whose verdict on a row depends on that row alone: safe to run chunk by chunk.
# Any other (uniqueness, ordering ...) sees the whole table.
ROW_LOCAL_EXPECTATIONS = frozenset({
    "expect_column_values_to_be_null", "expect_column_values_to_not_be_null",
    "expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex",
    "expect_column_values_to_match_regex_list", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_be_between",
    "expect_column_value_lengths_to_be_between", "expect_column_value_lengths_to_equal",
    "expect_column_values_to_match_strftime_format",
    "expect_column_pair_values_a_to_be_greater_than_b", "expect_column_pair_values_to_be_equal",
    "expect_select_column_values_to_be_unique_within_record",
})


@dataclass
class Outcome:
    """One expectation's result over every chunk (the attributes of GX's result read here)."""

    expectation_config: Any
    success: bool
    result: dict[str, Any]
    exception_info: dict[str, Any]


def _skip_batch_fingerprint() -> None:
    """GX hashes every pandas batch under 1 GB (HASH_THRESHOLD) into a 'pandas_data_fingerprint'
    marker, twice per validation, for a marker nothing here reads: validating the 1.2 M visits
    of 100,000 customers took 2.7 s with it and 1.7 s without. The expectations are
    unaffected."""
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


def _merge(batches: list[list[Any]]) -> list[Outcome]:
    """The chunks' results as one per expectation, in suite order (meta _order): failing if
    any chunk failed, with every chunk's failing rows and the first error raised."""
    merged: dict[int, Outcome] = {}
    for results in batches:
        for res in results:
            order = (res.expectation_config.meta or {}).get("_order", 0)
            found = (res.result or {}).get("unexpected_index_list")
            outcome = merged.setdefault(order, Outcome(res.expectation_config, True, {}, {}))
            outcome.success = outcome.success and bool(res.success)
            if found is not None:
                outcome.result.setdefault("unexpected_index_list", []).extend(found)
            if (res.exception_info or {}).get("raised_exception") \
                    and not outcome.exception_info:
                outcome.exception_info = res.exception_info
    return [merged[k] for k in sorted(merged)]


class GxValidator:
    """One ephemeral GX context per gate run: quiet, no files, no analytics."""

    def __init__(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx

        # After the import, which sets up GX's own loggers (its base config logs a temporary
        # docs folder at INFO on every ephemeral context).
        for name in ("great_expectations", "great_expectations.core", "great_expectations._docs",
                     "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        _skip_batch_fingerprint()
        self.gx = gx
        self._config = ExpectationConfiguration
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("revisit_snapshot")
        self._assets = 0

    def validate_table(self, table: str, view: pd.DataFrame, suite: dict,
                       parameters: dict[str, Any], row_local_only: bool = False
                       ) -> list[Outcome]:
        """The suite over `view` (positional index), row-local expectations in chunks of
        GX_CHUNK_ROWS: GX makes working copies (masks, converted columns) of the rows it is
        given, so a chunk bounds them whatever the table's size. Expectations over the whole
        table (uniqueness) get the whole table, only their columns; with `row_local_only`
        they are left out (`view` is a chunk of a table: revisit.quality.chunked checks
        those), the others keep their place in the suite (meta _order)."""
        numbered = [{**exp, "meta": {**(exp.get("meta") or {}), "_order": i}}
                    for i, exp in enumerate(suite["expectations"])]
        whole = [] if row_local_only else [
            e for e in numbered if e["type"] not in ROW_LOCAL_EXPECTATIONS]
        local = [e for e in numbered if e["type"] in ROW_LOCAL_EXPECTATIONS]
        batches: list[list[Any]] = []
        if whole:
            part = {**suite, "expectations": whole}
            batches.append(self.validate(table, view[suite_columns(part)],
                                         self.suite(table, part), parameters))
        if local:
            part = {**suite, "expectations": local}
            checks = self.suite(table, part)
            columns = suite_columns(part)
            for start in range(0, len(view), GX_CHUNK_ROWS):
                chunk = view.iloc[start:start + GX_CHUNK_ROWS][columns]
                batches.append(self.validate(table, chunk, checks, parameters))
        return _merge(batches)

    def suite(self, name: str, suite: dict) -> Any:
        """GX's suite of expectations numbered by validate_table (meta _order: their place in
        the whole suite, which errors name and results are sorted by)."""
        expectations = []
        for exp in suite["expectations"]:
            order = exp["meta"]["_order"]
            try:
                expectations.append(self._config(
                    type=exp["type"], kwargs=exp["kwargs"], meta=exp["meta"],
                ).to_domain_obj())
            except Exception as error:  # GX raises several types for a bad configuration
                raise QualityError(f"expectation suite {name}: expectation {order} "
                                   f"({exp['type']}) is invalid: {error}") from None
        return self.gx.ExpectationSuite(name=suite.get("name") or name,
                                        expectations=expectations)

    def validate(self, table: str, frame: pd.DataFrame, suite: Any,
                 parameters: dict[str, Any]) -> list[Any]:
        """One batch through GX, every failing row's index reported (result format COMPLETE).

        The batch is forgotten afterwards: GX's execution engine keeps every batch's data in
        its batch manager's cache for the life of the context, so a table checked chunk by
        chunk would end up held whole (190 MiB more per million visit rows, measured), and
        every metric it resolved in its metric cache, a row mask per expectation among them
        (memray at 3 M customers: 709 MiB of the gate's 3.2 GB heap peak were masks of
        earlier chunks). Those metrics are keyed by the batch, so no later batch reuses one."""
        self._assets += 1  # one asset per validation: a table may be validated in chunks
        name = f"{table}_{self._assets}"
        asset = self.source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(table).get_batch(
            batch_parameters={"dataframe": frame}
        )
        try:
            result = batch.validate(
                suite,
                result_format={"result_format": "COMPLETE", "partial_unexpected_count": 0},
                expectation_parameters=parameters,
            )
        finally:
            engine = self.source.get_execution_engine()
            engine.batch_manager.batch_data_cache.clear()
            engine.batch_manager.reset_batch_cache()
            if isinstance(getattr(engine, "_metric_cache", None), dict):  # GX has no public way
                engine._metric_cache.clear()
            self.source.delete_asset(name)
        return list(result.results)


__all__ = ["GX_CHUNK_ROWS", "ROW_LOCAL_EXPECTATIONS", "GxValidator", "Outcome"]
