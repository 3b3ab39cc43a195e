"""Shared foundations: errors, notices, atomic writes, the run manifest, settings, paths, images."""
