"""Where readings, alerts, their audit trail and dead letters are kept (SQLAlchemy)."""
