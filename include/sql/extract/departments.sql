-- Revisit extract: departments. Return exactly the canonical columns (DESIGN.md).
SELECT department_id, name, head_name, head_email
FROM departments
