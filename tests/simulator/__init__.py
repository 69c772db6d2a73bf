"""Tests of the provider simulator (spoon_llm.testing)."""
