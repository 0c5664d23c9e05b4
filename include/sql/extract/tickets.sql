-- Revisit extract: tickets raised before the cut-off. Later stamps are blanked by the pipeline.
SELECT ticket_id, customer_id, order_id, department_id, handler_agent_id, type, channel, priority,
       category, description, created_at, first_response_at, verified_at, plan_at, resolved_at,
       result_fed_back_at, closed_at, status, satisfaction
FROM tickets
-- No WHERE on the stamp: the pipeline drops rows stamped at or after the cut-off itself. A
-- filter here would compare text stamps as text (SQLite, VARCHAR columns) and lose rows
-- silently: 'yesterday' or '2026/11/05' sort after '2026-11-20', so the quality gate
-- would never see them.
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY ticket_id
