"""Seeded, vectorised synthetic Rotation data: one polars frame per input table (frames.py)."""
