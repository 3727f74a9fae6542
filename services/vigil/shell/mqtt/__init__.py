"""MQTT plumbing shared by the runtimes and the simulators: the paho client factory, the
raw `Message`, a bounded buffer, and the paho source with acknowledge-after-store."""
