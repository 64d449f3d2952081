"""Offline analysis: log and trace ingestion into DuckDB, timelines, knowledge base, post-incident reviews.

Nothing in this package imports Textual or the console.
"""
