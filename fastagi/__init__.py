"""ICTContact FastAGI: multi-tenant call control and billing for Asterisk.

Where things live (docs/layout.md has the table): a file's folder says what it may touch.
`agi/`, `ami/` the wire · `routes/` one module per AGI script, nothing else · `arguments/`
parsing script arguments, pure · `billing/`, `agents/rules.py`, `emergency.py` pure rules ·
`store/` every SQL statement (`db/`: engine, migrations, retry) · `jobs/` the periodic work
of `serve`, in one registry · `campaigns/` the dialer · `dialplan/`, `asterisk/` Asterisk's
files and account · `commands/` the `ictcontact` subcommands · `testing/` fakes of
Asterisk, for tests, benches and `simulate` only. `clock.py` is the one clock.
"""

__version__ = "0.1.0"
