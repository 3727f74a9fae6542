"""Vigil: remote health monitoring for virtual wards.

The package is laid out as one clinical core (`vigil.core`, pure Python, no I/O) with thin
shells around it: the device contract (`vigil.contract`), the embedded runtime
(`vigil.embedded`), the stores (`vigil.stores`), the explainer (`vigil.explain`) and the CLI.
"""

__version__ = "0.1.0"
