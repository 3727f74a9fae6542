"""The HTTP API and web pages: operator endpoints, the incident API, push streams, the ward console.

Handlers only translate HTTP to calls on what a runtime hands them (protocols, not runtimes)."""
