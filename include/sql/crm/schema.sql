-- Revisit demo CRM: exactly the canonical source model of DESIGN.md ("Source schema").
--
-- One file for SQLite, PostgreSQL and MySQL/MariaDB. revisit.db.ddl_statements replaces
--   {{timestamp}}      TIMESTAMP on SQLite and PostgreSQL (= without time zone), DATETIME on
--                      MySQL/MariaDB, whose TIMESTAMP is stored as UTC and may auto-update;
--                      PostgreSQL has no DATETIME. Values are naive local business time.
--   {{table_options}}  nothing, or on MySQL/MariaDB the InnoDB engine and utf8mb4 so that
--                      Chinese names round-trip.
-- Statements end with ";" at the end of a line. CREATE TABLE statements run before the bulk
-- load, CREATE INDEX statements after it (faster).
--
-- Foreign keys are deliberately not constraints: real CRMs are messy and the quality gate
-- checks references, so a demo that forbade dangling ids could not exercise it. Only primary
-- keys are NOT NULL for the same reason. The referencing columns are indexed, and so are the
-- timestamps the extract queries filter on.

CREATE TABLE departments (
    department_id           VARCHAR(16) NOT NULL,
    name                    VARCHAR(100),
    head_name               VARCHAR(50),
    head_email              VARCHAR(120),
    PRIMARY KEY (department_id)
) {{table_options}};

CREATE TABLE agents (
    agent_id                VARCHAR(16) NOT NULL,
    name                    VARCHAR(50),
    email                   VARCHAR(120),
    department_id           VARCHAR(16),
    role                    VARCHAR(16),        -- agent | supervisor
    active                  SMALLINT,           -- 0/1
    daily_capacity          SMALLINT,           -- NULL = policy assignment.daily_capacity
    PRIMARY KEY (agent_id)
) {{table_options}};

CREATE TABLE customers (
    customer_id             VARCHAR(16) NOT NULL,
    name                    VARCHAR(100),
    industry                VARCHAR(50),
    contact_name            VARCHAR(50),
    contact_title           VARCHAR(50),
    phone                   VARCHAR(32),
    email                   VARCHAR(120),
    source                  VARCHAR(50),
    tier                    VARCHAR(16),        -- standard | key
    owner_agent_id          VARCHAR(16),
    department_id           VARCHAR(16),
    cooperation_start_date  DATE,
    do_not_call             SMALLINT,           -- 0/1
    created_at              {{timestamp}},
    updated_at              {{timestamp}},
    PRIMARY KEY (customer_id)
) {{table_options}};

CREATE TABLE orders (
    order_id                VARCHAR(16) NOT NULL,
    customer_id             VARCHAR(16),
    product                 VARCHAR(100),
    product_version         VARCHAR(32),
    amount                  NUMERIC(12, 2),
    ordered_at              {{timestamp}},
    delivered_at            {{timestamp}},      -- NULL = not delivered yet
    PRIMARY KEY (order_id)
) {{table_options}};

CREATE TABLE tickets (
    ticket_id               VARCHAR(16) NOT NULL,
    customer_id             VARCHAR(16),
    order_id                VARCHAR(16),
    department_id           VARCHAR(16),
    handler_agent_id        VARCHAR(16),
    type                    VARCHAR(16),        -- complaint | consultation | suggestion | requirement | repair | other
    channel                 VARCHAR(16),        -- phone | email | visit | survey | online | third_party
    priority                VARCHAR(16),        -- urgent | important | general
    category                VARCHAR(32),        -- product_function | quality_failure | service_process | staff_attitude | other
    description             TEXT,
    created_at              {{timestamp}},
    first_response_at       {{timestamp}},
    verified_at             {{timestamp}},
    plan_at                 {{timestamp}},
    resolved_at             {{timestamp}},
    result_fed_back_at      {{timestamp}},
    closed_at               {{timestamp}},
    status                  VARCHAR(16),        -- pending | in_progress | resolved | closed
    satisfaction            SMALLINT,           -- 1-5, NULL = not rated
    PRIMARY KEY (ticket_id)
) {{table_options}};

CREATE TABLE ticket_pauses (
    ticket_id               VARCHAR(16) NOT NULL,
    paused_at               {{timestamp}} NOT NULL,
    resumed_at              {{timestamp}},      -- NULL = still waiting on the customer
    PRIMARY KEY (ticket_id, paused_at)
) {{table_options}};

CREATE TABLE visits (
    visit_id                VARCHAR(16) NOT NULL,
    customer_id             VARCHAR(16),
    agent_id                VARCHAR(16),
    kind                    VARCHAR(32),        -- welcome | early_use | stable_use | long_term | post_resolution | periodic | key_account | new_product | major_complaint | product_upgrade
    ticket_id               VARCHAR(16),
    order_id                VARCHAR(16),
    visited_at              {{timestamp}},
    method                  VARCHAR(16),        -- phone | email | onsite | survey | sms | im
    outcome                 VARCHAR(16),        -- reached | no_answer | refused | rescheduled | wrong_number
    satisfaction            SMALLINT,           -- 1-10, NULL = not rated
    notes                   TEXT,
    PRIMARY KEY (visit_id)
) {{table_options}};

CREATE INDEX ix_agents_department_id ON agents (department_id);
CREATE INDEX ix_customers_owner_agent_id ON customers (owner_agent_id);
CREATE INDEX ix_customers_department_id ON customers (department_id);
CREATE INDEX ix_customers_created_at ON customers (created_at);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
CREATE INDEX ix_orders_ordered_at ON orders (ordered_at);
CREATE INDEX ix_tickets_customer_id ON tickets (customer_id);
CREATE INDEX ix_tickets_order_id ON tickets (order_id);
CREATE INDEX ix_tickets_department_id ON tickets (department_id);
CREATE INDEX ix_tickets_handler_agent_id ON tickets (handler_agent_id);
CREATE INDEX ix_tickets_created_at ON tickets (created_at);
CREATE INDEX ix_ticket_pauses_paused_at ON ticket_pauses (paused_at);
CREATE INDEX ix_visits_customer_id ON visits (customer_id);
CREATE INDEX ix_visits_agent_id ON visits (agent_id);
CREATE INDEX ix_visits_ticket_id ON visits (ticket_id);
CREATE INDEX ix_visits_order_id ON visits (order_id);
CREATE INDEX ix_visits_visited_at ON visits (visited_at);
