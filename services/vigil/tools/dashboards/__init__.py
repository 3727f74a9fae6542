"""The physicians' Grafana dashboards as code: definitions, file export, HTTP API publishing."""
