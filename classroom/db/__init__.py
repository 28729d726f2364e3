"""Persistence: SQLAlchemy 2 async tables, engine and migrations (SQLite and PostgreSQL)."""
