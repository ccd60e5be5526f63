"""Forge's serving process: predict for rollouts (rollouts.serving.app), run by gunicorn beside the console."""
