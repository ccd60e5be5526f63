"""Champion/challenger rollout records arrive with their issues."""
