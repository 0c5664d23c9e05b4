-- Revisit extract: orders placed before the cut-off.
SELECT order_id, customer_id, product, product_version, amount, ordered_at, delivered_at
FROM orders
WHERE ordered_at < :cutoff OR ordered_at IS NULL
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY order_id
