"""The MQTT -> Kafka ingest gateway (scaled mode)."""
