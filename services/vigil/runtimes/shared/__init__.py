"""What every runtime shares: the service skeleton (/healthz, /metrics, signals, graceful stop:
`skeleton`), the one ok/degraded/down rule (`health`), and the alerting service (desk,
dispatcher, explanations, API routes: `alerting`)."""
