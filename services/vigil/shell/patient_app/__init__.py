"""The patient app: what a patient sees of their own monitoring (issue 16)."""
