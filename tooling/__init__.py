"""Developer tooling, not imported by workers: the demo-CRM generator, the local SMTP sink."""
