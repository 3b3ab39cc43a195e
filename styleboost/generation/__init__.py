"""Generating images from prompt files with a base or tuned model."""
