-- Revisit extract: departments. Return exactly the canonical columns (DESIGN.md).
SELECT department_id, name, head_name, head_email
FROM departments
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY department_id
