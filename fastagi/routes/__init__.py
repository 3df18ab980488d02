"""The route table: `agi_network_script` (without its query string) -> handler.

One explicit dict; add a line per script. A handler is `async def handle(channel,
services)` (see fastagi.agi.channel.Channel and fastagi.services.Services).
INTERACTIVE names the scripts that wait for the caller (prompts and keys): the server
bounds them by --interactive-timeout instead of --session-timeout.
"""

from __future__ import annotations

from fastagi.routes import agent_login, agent_logout, authorize, failover, health, settle

ROUTES = {
    "authorize": authorize.handle,
    "settle": settle.handle,
    "failover": failover.handle,
    "health": health.handle,
    "agent_login": agent_login.handle,
    "agent_logout": agent_logout.handle,
}

INTERACTIVE = frozenset({"agent_login"})
