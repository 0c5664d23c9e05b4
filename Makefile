# The two set-up commands of the README; both install what they need on first use.
.PHONY: demo test lint clean

demo:            ## build the demo CRM and run the daily and monthly DAGs (no services needed)
	@scripts/demo.sh

test:            ## lint, the import contracts, then the whole test suite
	@scripts/bootstrap.sh
	.venv/bin/ruff check .
	PYTHONPATH=plugins:. .venv/bin/lint-imports
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check .
	PYTHONPATH=plugins:. .venv/bin/lint-imports

clean:           ## remove outputs and the local Airflow home (not the venv)
	rm -rf output airflow_home
