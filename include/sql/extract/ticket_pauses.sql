-- Revisit extract: ticket pauses begun before the cut-off (optional table in a CRM).
SELECT ticket_id, paused_at, resumed_at
FROM ticket_pauses
WHERE paused_at < :cutoff OR paused_at IS NULL
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY ticket_id, paused_at
