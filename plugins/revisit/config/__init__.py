"""The policy, the canonical CRM schema and where the project's files live."""
