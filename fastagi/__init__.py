"""ICTContact FastAGI: multi-tenant call control and billing for Asterisk."""

__version__ = "0.1.0"
