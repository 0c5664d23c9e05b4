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
"$PY" -m revisit.demo_crm --url "sqlite:///$DEMO_DIR/crm.sqlite" --customers "$CUSTOMERS" \
  --as-of "$CALL_DATE" --entry-errors "$ENTRY_ERRORS"
export AIRFLOW_CONN_CRM_DB="sqlite:///$DEMO_DIR/crm.sqlite"

echo "demo: preparing Airflow metadata (SQLite) in $AIRFLOW_HOME"
"$AIRFLOW" db migrate >"$LOG_DIR/airflow-db-migrate.log" 2>&1

run_dag() {  # dag_id logical_date
  local log="$LOG_DIR/$1.log"
  echo "demo: airflow dags test $1 $2   (log: $log)"
  if ! "$AIRFLOW" dags test "$1" "$2" >"$log" 2>&1 || ! grep -q "state=success" "$log"; then
    echo "demo: $1 failed; the end of its log:" >&2
    grep -E "error|Error|ERROR|Traceback|raise" "$log" | tail -20 >&2
    exit 1
  fi
}
run_dag revisit_daily "$CALL_DATE"
run_dag revisit_monthly "$MONTH_RUN"

echo
echo "demo: done. Outputs under $REVISIT_OUTPUT_DIR:"
(cd "$REVISIT_OUTPUT_DIR" && find . -path ./demo/logs -prune -o -type f -print | sort | sed 's|^\./|  |' | head -60)
