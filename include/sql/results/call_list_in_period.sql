-- Who had which customer on their call list on run dates from start (inclusive) to end
-- (exclusive): the monthly per-agent credit of a due visit goes to the agent whose list it was
-- on (revisit.rules.credit; reasons are the row's reason codes joined by ';').
SELECT run_date, agent_id, customer_id, reasons
FROM call_list
WHERE run_date >= :start AND run_date < :end
