"""Vigil's own Kafka protocol (scaled mode): the records on vigil.readings, vigil.alerts and
vigil.deadletter, and creating those topics. Not the device contract (that is vigil.shell.contract)."""
