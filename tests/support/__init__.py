"""Helpers shared by the test modules (never import helpers from a test_*.py module).

- `database`: the server URL, database names, and the migrated template every test's
  database is cloned from.
- `waiting`: `wait_until`, the one way to wait for a condition (with a deadline).
- `sql`: one-statement `execute` / `scalar` / `rows` on an Engine or URL.
- `chats`: `play`, the interpreter of scripted byte conversations with a protocol.
"""
