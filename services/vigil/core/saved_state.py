"""Patients' state is pickled (a Faust changelog, a snapshot) and must unpickle in a later
version whose classes gained attributes: the classes with `__slots__` fill in what the saved
state lacks from their own defaults, then take what it has (`restore`)."""

from __future__ import annotations


def restore(obj: object, state: object) -> None:
    """Set `obj`'s attributes from a pickled state: a dict, or pickle's `(dict, slots)` pair for
    classes with `__slots__`."""
    values = state[1] if isinstance(state, tuple) else state
    for name, value in (values or {}).items():  # type: ignore[union-attr]
        setattr(obj, name, value)
