-- Revisit extract: orders placed before the cut-off.
SELECT order_id, customer_id, product, product_version, amount, ordered_at, delivered_at
FROM orders
-- No WHERE on the stamp: the pipeline drops rows stamped at or after the cut-off itself. A
-- filter here would compare text stamps as text (SQLite, VARCHAR columns) and lose rows
-- silently: 'yesterday' or '2026/11/05' sort after '2026-11-20', so the quality gate
-- would never see them.
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY order_id
