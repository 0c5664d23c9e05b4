"""The daily and monthly stages over partitions; no Airflow here."""
