"""What every runtime shares: the alerting service (desk, dispatcher, explanations, API routes)."""
