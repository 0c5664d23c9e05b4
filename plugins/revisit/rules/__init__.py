"""The business rules as pure functions over frames: calendar, visits, call lists, SLA, KPIs."""
