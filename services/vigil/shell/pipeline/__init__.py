"""The processing shell: raw messages or checked readings in, one typed Decision out (rows to
store, alert changes for the desk, announcements). Patients are read through PatientStates; the
runtimes store decisions and acknowledge their sources through the shared InOrderStore. Used by
the embedded runtime, the Faust processor and replay."""
