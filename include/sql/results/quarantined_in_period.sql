-- The rows the daily quality gate quarantined on run dates from start (inclusive) to end
-- (exclusive): the monthly report's "rows left out by the quality gate" (revisit.io.results).
SELECT DISTINCT table_name, row_key
FROM quality_issues
WHERE run_date >= :start AND run_date < :end
