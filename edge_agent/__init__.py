"""edge-agent: power-aware inference daemon for NVIDIA Jetson devices."""

__version__ = "0.1.0"
