"""The only code that talks to Airflow: task contexts, connections, SMTP, alerts."""
