"""Governance reads, one module per concern (selectors/reports.py; monitoring arrives with its issue)."""
