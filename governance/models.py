"""Evidence and oversight records (drift, alerts, policies, reports) arrive with their issues."""
