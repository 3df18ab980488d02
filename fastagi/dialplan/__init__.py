"""The Asterisk side of ICTContact: per-client dialplan generation, a strict checker for
Asterisk .conf files and dialplans, and the dialplan reload helpers."""
