"""Revisit: customer return-visit call lists, SLA flags and monthly reviews from a CRM."""

__version__ = "0.1.0"
