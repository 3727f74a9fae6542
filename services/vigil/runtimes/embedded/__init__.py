"""The embedded runtime: broker, pipeline, store and HTTP in one process (`vigil run`, `vigil demo`)."""
