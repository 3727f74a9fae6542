"""`vigil notifier` (scaled mode): alert events from Kafka into incidents, notifications and the API."""
