"""The Faust stream processor (scaled mode)."""
