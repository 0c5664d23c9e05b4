-- Revisit extract: visits made before the cut-off.
SELECT visit_id, customer_id, agent_id, kind, ticket_id, order_id, visited_at, method, outcome,
       satisfaction, notes
FROM visits
-- No WHERE on the stamp: the pipeline drops rows stamped at or after the cut-off itself. A
-- filter here would compare text stamps as text (SQLite, VARCHAR columns) and lose rows
-- silently: 'yesterday' or '2026/11/05' sort after '2026-11-20', so the quality gate
-- would never see them.
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY visit_id
