"""Scoring Vigil's alerts against a simulator's ground truth (pure functions)."""
