-- Revisit extract: agents. Return exactly the canonical columns (DESIGN.md).
SELECT agent_id, name, email, department_id, role, active, daily_capacity
FROM agents
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY agent_id
