"""Tools around the runtimes: benchmarks, Grafana dashboards as code, explain and explain-eval."""
