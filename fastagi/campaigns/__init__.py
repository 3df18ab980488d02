"""Outbound campaigns: contact import, pacing and scheduling rules, the dialer."""
