"""Scoring generated images, protocols, and the report."""
