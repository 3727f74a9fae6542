"""Learned models (anomaly, deterioration risk): training, export to ONNX, artifacts."""
