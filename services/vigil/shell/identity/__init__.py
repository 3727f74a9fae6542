"""Identities and their secrets: devices' MQTT credentials, people's accounts and sessions, and
single sign-on (OpenID Connect). Who may do what is the core's access policy (vigil.core.access)."""
