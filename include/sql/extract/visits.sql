-- Revisit extract: visits made before the cut-off.
SELECT visit_id, customer_id, agent_id, kind, ticket_id, order_id, visited_at, method, outcome,
       satisfaction, notes
FROM visits
WHERE visited_at < :cutoff OR visited_at IS NULL
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY visit_id
