"""Alembic migration scripts (the only way greenai's schema changes)."""
