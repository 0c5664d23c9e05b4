# Sourced by the demo and the tests: a self-contained Airflow (SQLite metadata) for this checkout.
# Everything is overridable from the caller's environment.
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$ROOT/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW__CORE__DEFAULT_TIMEZONE="${AIRFLOW__CORE__DEFAULT_TIMEZONE:-Asia/Shanghai}"
export PYTHONPATH="$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"
export REVISIT_OUTPUT_DIR="${REVISIT_OUTPUT_DIR:-$ROOT/output}"
mkdir -p "$AIRFLOW_HOME"
