"""Rendering an evaluation report: JSON, Markdown, HTML."""
