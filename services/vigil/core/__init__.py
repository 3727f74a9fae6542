"""The clinical core: pure Python, no I/O. Every runtime calls these same functions.

Nothing in this package imports a broker, a database, a web framework or the clock: time
always comes in as an argument, so the core behaves the same live, replayed, or in training.
"""
