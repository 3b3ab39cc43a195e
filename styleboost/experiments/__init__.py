"""Whole experiments: the embedded default run and the method comparison."""
