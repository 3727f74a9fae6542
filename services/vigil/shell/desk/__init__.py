"""The alert desk: incidents, their lifecycle and audit trail, and the outbox of notifications."""
