"""Governance API under /api/v1/, one module per concern."""
