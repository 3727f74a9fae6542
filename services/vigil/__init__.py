"""Vigil: remote health monitoring for virtual wards.

The folder is the import path, and the layers read from the top (each imports only below it):

- `vigil.core`: the pure clinical core (readings, NEWS2, quality, rules, policy, incidents);
  standard library only, no I/O.
- `vigil.settings`: the one configuration object (`VIGIL_*` environment variables).
- `vigil.shell`: the shared shell every runtime uses: the device contract, the pipeline, MQTT
  sources, stores, model serving, explanations, the alert desk and notification channels.
- `vigil.web`: the HTTP API and web pages.
- `vigil.runtimes`: one composition root per runtime (embedded; scaled: gateway, processor,
  notifier) and the service skeleton they share.
- `vigil.tools`: benchmarks, dashboards as code, explain-eval; `vigil.cli`: the `vigil` command.

Beside it: `vigil_simulators` (simulators/) and `vigil_models` (models/). The rules are checked
by tests/architecture; docs/architecture.md has the table.
"""

__version__ = "0.1.0"
