"""Agents at their phones: the pure login rules (no database, no Asterisk)."""
