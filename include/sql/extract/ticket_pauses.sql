-- Revisit extract: ticket pauses begun before the cut-off (optional table in a CRM).
SELECT ticket_id, paused_at, resumed_at
FROM ticket_pauses
-- No WHERE on the stamp: the pipeline drops rows stamped at or after the cut-off itself. A
-- filter here would compare text stamps as text (SQLite, VARCHAR columns) and lose rows
-- silently: 'yesterday' or '2026/11/05' sort after '2026-11-20', so the quality gate
-- would never see them.
-- Ordered by key: the snapshot is the same whichever database and query plan served it.
ORDER BY ticket_id, paused_at
