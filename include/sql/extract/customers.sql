-- Revisit extract: customers known at the cut-off.
SELECT customer_id, name, industry, contact_name, contact_title, phone, email, source, tier,
       owner_agent_id, department_id, cooperation_start_date, do_not_call, created_at, updated_at
FROM customers
-- No WHERE on the stamp: the pipeline drops rows stamped at or after the cut-off itself. A
-- filter here would compare text stamps as text (SQLite, VARCHAR columns) and lose rows
-- silently: 'yesterday' or '2026/11/05' sort after '2026-11-20', so the quality gate
-- would never see them.
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY customer_id
