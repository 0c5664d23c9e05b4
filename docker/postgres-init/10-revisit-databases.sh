#!/bin/bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d):
# besides the Airflow metadata database (POSTGRES_DB), create the demo CRM database and the
# Revisit results database, owned by the same user. Names come from docker-compose.yml.
set -euo pipefail
for db in ${REVISIT_DATABASES:-crm revisit_results}; do
  echo "creating database ${db}"
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" \
    -c "CREATE DATABASE \"${db}\" OWNER \"${POSTGRES_USER}\" ENCODING 'UTF8' TEMPLATE template0"
done
