"""The runtimes: one composition root each, assembled from settings.

embedded (one process: broker, pipeline, SQLite, HTTP), and the scaled path: gateway (MQTT ->
Kafka), processor (Faust workers), notifier (incidents and notifications). They never import
each other; what they share is in `vigil.runtimes.shared`."""
