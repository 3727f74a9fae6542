"""The processing shell: raw messages or checked readings in, the core's verdicts out as rows
to store and alerts to announce. Used by the embedded runtime, the Faust processor and replay."""
