#!/usr/bin/env bash
# The README's main command: build the demo CRM (SQLite) and run the daily and monthly DAGs
# with `airflow dags test` on SQLite metadata. No service needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
# shellcheck source=scripts/airflow_env.sh
source scripts/airflow_env.sh
PY="$ROOT/.venv/bin/python"
AIRFLOW="$ROOT/.venv/bin/airflow"

CALL_DATE="${DEMO_CALL_DATE:-2026-11-20}"          # call date D of the daily run
MONTH_RUN="${DEMO_MONTH_RUN:-2026-11-02}"          # the monthly run that reviews the month before
CUSTOMERS="${DEMO_CUSTOMERS:-2000}"
ENTRY_ERRORS="${DEMO_ENTRY_ERRORS:-0.002}"            # typos for the quality gate to quarantine
DEMO_DIR="$REVISIT_OUTPUT_DIR/demo"
LOG_DIR="$DEMO_DIR/logs"
mkdir -p "$LOG_DIR"
chmod 750 "$REVISIT_OUTPUT_DIR" "$DEMO_DIR"

echo "demo: building the demo CRM ($CUSTOMERS customers) in $DEMO_DIR/crm.sqlite"
"$PY" -m tooling.demo_crm --url "sqlite:///$DEMO_DIR/crm.sqlite" --customers "$CUSTOMERS" \
  --as-of "$CALL_DATE" --entry-errors "$ENTRY_ERRORS"
export AIRFLOW_CONN_CRM_DB="sqlite:///$DEMO_DIR/crm.sqlite"

# A real local SMTP server (aiosmtpd) stands in for the company's: it keeps every message it
# receives in $DEMO_DIR/mail (a Maildir), where every e-mail can be read as received.
SMTP_PORT="$("$PY" -c 'from tooling.mailsink import free_port; print(free_port())')"
"$PY" -m tooling.mailsink --port "$SMTP_PORT" --maildir "$DEMO_DIR/mail" >"$LOG_DIR/mailsink.log" 2>&1 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true' EXIT
export AIRFLOW_CONN_SMTP_DEFAULT="{\"conn_type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": $SMTP_PORT, \"extra\": {\"disable_tls\": true, \"disable_ssl\": true, \"from_email\": \"revisit@revisit.example.com\", \"retry_limit\": 0, \"timeout\": 10}}"
for _ in $(seq 50); do grep -q listening "$LOG_DIR/mailsink.log" 2>/dev/null && break; sleep 0.1; done

echo "demo: preparing Airflow metadata (SQLite) in $AIRFLOW_HOME"
"$AIRFLOW" db migrate >"$LOG_DIR/airflow-db-migrate.log" 2>&1

run_dag() {  # dag_id logical_date
  local log="$LOG_DIR/$1.log"
  echo "demo: airflow dags test $1 $2   (log: $log)"
  # = airflow dags test, with the fix for apache/airflow#73428 (tooling/dags_test.py)
  if ! "$PY" -m tooling.dags_test "$1" "$2" >"$log" 2>&1 || ! grep -q "state=success" "$log"; then
    echo "demo: $1 failed; the end of its log:" >&2
    grep -E "error|Error|ERROR|Traceback|raise" "$log" | tail -20 >&2
    exit 1
  fi
}
run_dag revisit_daily "$CALL_DATE"
run_dag revisit_monthly "$MONTH_RUN"

MONTH="$("$PY" -c 'import datetime as d, sys; f = d.date.fromisoformat(sys.argv[1]).replace(day=1); print((f - d.timedelta(days=1)).strftime("%Y-%m"))' "$MONTH_RUN")"
OUT="$REVISIT_OUTPUT_DIR"
MAILS="$(find "$DEMO_DIR/mail/new" "$DEMO_DIR/mail/cur" -type f 2>/dev/null | wc -l | tr -d ' ')"
AGENTS="$(find "$OUT/call_lists/$CALL_DATE" -name '*.xlsx' | wc -l | tr -d ' ')"
PDFS="$(find "$OUT/reports/$MONTH" -maxdepth 1 -name '*.pdf' | wc -l | tr -d ' ')"
cat <<EOF2

demo: done. Outputs of call date $CALL_DATE and month $MONTH under $OUT:
  call lists   call_lists/$CALL_DATE/<agent_id>.xlsx and .csv ($AGENTS agents),
               sms_notice.csv, carried_over.csv, not_listed.csv
  quality      quality/$CALL_DATE/summary.md (quarantine.csv: every rejected row and why)
  SLA          sla/$CALL_DATE/sla_status.csv, digest_<department_id>.csv
  reports      reports/$MONTH/<department_id>.pdf ($PDFS departments) with <department_id>_agents.xlsx
               (the full per-agent table, attached to the head's e-mail), kpis.csv, agents.csv,
               sla_status.csv (the verdicts the SLA KPIs count), delivery.json
  leadership   reports/$MONTH/company/company.pdf (every department side by side; after a
               quarter's last month also reports/<YYYY>-Q<n>/: kpis.csv, agents.csv, company/)
  results db   results.sqlite (call_list, sla_status, quality_issues, mail_delivery, kpis,
               agent_kpis)
  e-mails      demo/mail: $MAILS messages as the local SMTP server received them (each agent's
               call list, the heads' SLA digests and monthly reports, any data-team alert;
               a rerun sends none again)
  logs         demo/logs/
EOF2
