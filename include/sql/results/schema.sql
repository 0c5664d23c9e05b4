-- Revisit results database: what the daily and monthly runs produced, keyed by run date so a
-- rerun or backfill replaces its own rows (DELETE + INSERT of the partition in one transaction).
-- Placeholders as in include/sql/crm/schema.sql: {{timestamp}}, {{table_options}}, {{ddl_lock}}.
-- Timestamps are naive business-local time (policy calendar.timezone).
-- Personal data is kept out on purpose: ids and codes only, no names or phone numbers.
-- The VARCHAR widths here are the one source of the id limits the quality gate checks
-- (revisit.config.schema.results_column_widths): widen a column here, then run
-- `python -m revisit.quality.gate` to regenerate the suites. CREATE TABLE IF NOT EXISTS does not
-- alter an existing table: widen it there yourself (ALTER TABLE) before admitting longer ids.
-- Migration: a column listed here but missing from an existing table (e.g. sla_status.due_today
-- .. policy_version of a results database made before they existed) is added by
-- revisit.io.results.ensure_schema with ALTER TABLE .. ADD COLUMN <its definition here>, on every
-- dialect and idempotently (only missing columns; a parallel task adding it first is fine).
-- Only nullable columns can be added that way: give a new column no NOT NULL.

-- Parallel tasks create these tables at the same moment: {{ddl_lock}} makes them queue where the
-- database needs it (PostgreSQL: a transaction-scoped advisory lock; elsewhere nothing).
{{ddl_lock}};

CREATE TABLE IF NOT EXISTS call_list (
    run_date          DATE NOT NULL,
    agent_id          VARCHAR(16) NOT NULL,
    list_rank         INTEGER NOT NULL,
    customer_id       VARCHAR(16) NOT NULL,
    tier              VARCHAR(16),
    reasons           VARCHAR(200) NOT NULL,
    window_end        DATE,
    overdue_days      INTEGER NOT NULL,
    ticket_id         VARCHAR(200),
    order_id          VARCHAR(200),
    suggested_window  VARCHAR(20),
    PRIMARY KEY (run_date, customer_id)
) {{table_options}};

CREATE TABLE IF NOT EXISTS sla_status (
    run_date          DATE NOT NULL,
    ticket_id         VARCHAR(16) NOT NULL,
    metric            VARCHAR(32) NOT NULL,
    customer_id       VARCHAR(16),
    department_id     VARCHAR(16),
    priority          VARCHAR(16),
    started_at        {{timestamp}},
    deadline          {{timestamp}},
    achieved_at       {{timestamp}},
    status            VARCHAR(16) NOT NULL,
    overdue_minutes   INTEGER NOT NULL,
    -- How the verdict came about (DESIGN.md "SLA"), added after the first release: nullable,
    -- so revisit.io.results.ensure_schema can add them to an existing table (rows written
    -- before have NULL there).
    due_today         BOOLEAN,
    target            VARCHAR(32),
    elapsed_minutes   INTEGER,
    paused_minutes    INTEGER,
    policy_version    VARCHAR(12),
    PRIMARY KEY (run_date, ticket_id, metric)
) {{table_options}};

CREATE TABLE IF NOT EXISTS quality_issues (
    run_date          DATE NOT NULL,
    table_name        VARCHAR(32) NOT NULL,
    row_key           VARCHAR(200) NOT NULL,
    check_name        VARCHAR(64) NOT NULL,
    column_name       VARCHAR(64) NOT NULL,
    reason            VARCHAR(500) NOT NULL,
    PRIMARY KEY (run_date, table_name, row_key, check_name, column_name)
) {{table_options}};

-- E-mails to department heads (mail_kind report: the monthly PDF, period = month; sla_digest:
-- the daily breach digest, period = call date): one row per (kind, period, department), so a
-- retry or a rerun never sends a head the same message twice. state: pending (claimed, being
-- sent), sent, failed (the server refused or could not be reached: safe to retry), unknown (the
-- attempt died while talking to the server: it may have been delivered; never resent
-- automatically).
CREATE TABLE IF NOT EXISTS mail_delivery (
    mail_kind         VARCHAR(16) NOT NULL,
    period            VARCHAR(10) NOT NULL,
    department_id     VARCHAR(16) NOT NULL,
    recipient         VARCHAR(320),
    state             VARCHAR(16) NOT NULL,
    attempts          INTEGER NOT NULL,
    message_id        VARCHAR(255),
    content_sha256    VARCHAR(64),
    last_error        VARCHAR(1000),
    updated_at        {{timestamp}} NOT NULL,
    sent_at           {{timestamp}},
    PRIMARY KEY (mail_kind, period, department_id)
) {{table_options}};

-- The monthly KPIs of reports/M/kpis.csv (DESIGN.md "Monthly KPI names"), one row per
-- (month, department or ALL, metric); value NULL when undefined (nothing due, no rating).
-- The monthly kpis task replaces its month's rows (revisit.io.results.replace_months).
CREATE TABLE IF NOT EXISTS kpis (
    month             VARCHAR(7) NOT NULL,
    department_id     VARCHAR(16) NOT NULL,
    metric            VARCHAR(32) NOT NULL,
    value             DOUBLE PRECISION,
    PRIMARY KEY (month, department_id, metric)
) {{table_options}};

-- The per-agent rows of reports/M/agents.csv (DESIGN.md "Per-agent credit"): one per
-- (month, department, agent), replaced by month with kpis in the same transaction.
-- avg_visit_satisfaction is on 0-100 (a visit's 1-10 rating x10), NULL without a rating.
CREATE TABLE IF NOT EXISTS agent_kpis (
    month                   VARCHAR(7) NOT NULL,
    department_id           VARCHAR(16) NOT NULL,
    agent_id                VARCHAR(16) NOT NULL,
    visits_due              INTEGER NOT NULL,
    visits_on_time          INTEGER NOT NULL,
    visits_made             INTEGER NOT NULL,
    visits_reached          INTEGER NOT NULL,
    avg_visit_satisfaction  DOUBLE PRECISION,
    tickets_handled         INTEGER NOT NULL,
    sla_breaches            INTEGER NOT NULL,
    PRIMARY KEY (month, department_id, agent_id)
) {{table_options}};
