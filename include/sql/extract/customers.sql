-- Revisit extract: customers known at the cut-off (bind parameter cutoff = D 00:00, CRM local time).
SELECT customer_id, name, industry, contact_name, contact_title, phone, email, source, tier,
       owner_agent_id, department_id, cooperation_start_date, do_not_call, created_at, updated_at
FROM customers
WHERE created_at < :cutoff OR created_at IS NULL
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY customer_id
