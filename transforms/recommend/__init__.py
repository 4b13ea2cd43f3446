"""The recommendation lists: model candidates into lists (lists.py), their explanations,
fallbacks, stores and preference rows: recommendation_data rows, polars in and out."""
