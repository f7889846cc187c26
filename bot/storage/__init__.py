"""Conversation storage: sqlmodel tables, Alembic migrations and the store the runtime talks to."""
