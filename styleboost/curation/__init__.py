"""Choosing training data from a pool: ``curate`` (the curate-aux command) and ``page`` (its HTML page)."""
