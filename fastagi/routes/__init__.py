"""The route table: `agi_network_script` (without its query string) -> handler.

One explicit dict; add a line per script. A handler is `async def handle(channel,
services)` (see fastagi.agi.channel.Channel and fastagi.services.Services).
"""

from __future__ import annotations

from fastagi.routes import authorize, health, settle

ROUTES = {
    "authorize": authorize.handle,
    "settle": settle.handle,
    "health": health.handle,
}
