"""Bundled power profile files (power_profiles/*.yaml at the repository top level)."""
