"""Governance pages, one module per concern."""
