"""The wire: the FastAGI protocol on Twisted (replies, quoting, environment, the server and
the Channel handlers see). It knows nothing of routes, rules or the database."""
