"""Helpers shared by the test folders (importable as ``_support``: ``tests/`` is on ``sys.path`` under pytest)."""
