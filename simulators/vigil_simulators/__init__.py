"""Simulated wearables: physiology, scenarios, a fleet publishing over MQTT, and ground truth."""
