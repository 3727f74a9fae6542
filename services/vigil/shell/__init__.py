"""The shared shell: the adapters every runtime is built from.

contract (device payloads), streams (Vigil's Kafka records and topics), registry (devices and
patients), mqtt (client, sources, the raw message), pipeline (raw messages -> the core -> rows),
stores (SQL, InfluxDB), scoring (ONNX serving), explain (texts), desk (incidents and outbox),
notify (dispatcher and channels), observability (logs, metrics). Depends on vigil.core and
vigil.settings only; never on a runtime."""
