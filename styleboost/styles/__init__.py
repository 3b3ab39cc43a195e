"""Procedural art styles and the synthetic style data set."""
