"""Tests for edge_agent.hardware."""
