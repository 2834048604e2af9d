"""JSON Schema files of the MQTT payloads (package data)."""
