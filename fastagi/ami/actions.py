"""The AMI actions the product sends, as pure builders of their fields and readers of
their answers (main/manager.c, Asterisk 22).

Write class each action needs (manager.c `ast_manager_register_xml_core`; a user may run
an action when its write classes share any one class with the action's):

| action           | write class needed        | used for                               |
| ---------------- | ------------------------- | -------------------------------------- |
| Login, Logoff    | none                      | every connection                       |
| Hangup           | `system` or `call`        | enforcement (suspension, no credit)    |
| CoreShowChannels | `system` or `reporting`   | reconciliation (which channels live)   |
| Setvar           | `call`                    | extending a live call's limit          |
| Originate        | `originate`               | campaign calls (`OriginateResponse`)   |
| QueueStatus      | none (app_queue.c)        | progressive campaigns: free agents     |

`OriginateResponse` and `Hangup` events are class `call`, so the user reads `call`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from fastagi.ami.message import AmiMessage

# OriginateResponse `Reason` values (include/asterisk/frame.h AST_CONTROL_*)
ORIGINATE_REASONS = {0: "failed", 1: "hangup", 3: "no-answer", 4: "answered", 5: "busy",
                     8: "congestion"}


@dataclass(frozen=True)
class ChannelInfo:
    """One `CoreShowChannel` item: the fields reconciliation uses."""

    channel: str
    uniqueid: str
    linkedid: str
    accountcode: str
    context: str
    exten: str
    state: str
    application: str
    duration_seconds: int | None

    @classmethod
    def from_event(cls, event: AmiMessage) -> "ChannelInfo":
        return cls(channel=event.get("Channel", ""), uniqueid=event.get("Uniqueid", ""),
                   linkedid=event.get("Linkedid", ""),
                   accountcode=event.get("AccountCode", ""),
                   context=event.get("Context", ""), exten=event.get("Exten", ""),
                   state=event.get("ChannelStateDesc", ""),
                   application=event.get("Application", ""),
                   duration_seconds=parse_duration(event.get("Duration", "")))


@dataclass(frozen=True)
class OriginateResult:
    """The `OriginateResponse` of an async Originate: `success`, Asterisk's `reason`
    code and its name, the channel and uniqueid Asterisk gave it."""

    success: bool
    reason: int | None
    reason_name: str
    channel: str
    uniqueid: str
    event: AmiMessage

    @classmethod
    def from_event(cls, event: AmiMessage) -> "OriginateResult":
        try:
            reason: int | None = int(event.get("Reason", ""))
        except ValueError:
            reason = None
        return cls(success=(event.get("Response") or "").lower() == "success",
                   reason=reason, reason_name=ORIGINATE_REASONS.get(reason, "unknown"),
                   channel=event.get("Channel", ""), uniqueid=event.get("Uniqueid", ""),
                   event=event)


def parse_duration(text: str) -> int | None:
    """`HH:MM:SS` (CoreShowChannel Duration) -> seconds; None if empty or malformed."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    hours, minutes, seconds = map(int, parts)
    return hours * 3600 + minutes * 60 + seconds


def hangup_fields(channel: str, cause: int) -> dict[str, object]:
    """Hangup of one channel, by name or uniqueid (Asterisk's lookup takes either). A
    regex (`/.../`) is refused: the product only ever names one channel."""
    if not channel or channel.startswith("/"):
        raise ValueError(f"Hangup needs one channel name or uniqueid, not {channel!r}")
    if not 0 < cause <= 127:
        raise ValueError(f"Q.850 cause must be 1..127, not {cause}")
    return {"Channel": channel, "Cause": cause}


def setvar_fields(channel: str, variable: str, value: str) -> dict[str, object]:
    if not channel:
        raise ValueError("Setvar on no channel would set a global variable")
    return {"Channel": channel, "Variable": variable, "Value": value}


def originate_fields(channel: str, *, context: str | None = None, exten: str | None = None,
                     priority: int | None = None, application: str | None = None,
                     data: str | None = None, timeout_ms: int | None = None,
                     caller_id: str | None = None, account: str | None = None,
                     variables: Mapping[str, str] | None = None,
                     channel_id: str | None = None,
                     other_channel_id: str | None = None) -> list[tuple[str, object]]:
    """An async Originate (main/manager.c action_originate): either context/exten/priority
    or application/data. `channel_id` / `other_channel_id` are the uniqueids of the new
    channel and, for a Local channel, of its ;2 half. Variables go one `Variable:
    name=value` header each (no comma splitting surprises). The one Originate builder:
    the dialer's (fastagi.campaigns.originate) is made with it."""
    if (application is None) == (exten is None):
        raise ValueError("Originate needs either exten (with context) or application")
    fields: list[tuple[str, object]] = [
        ("Channel", channel), ("Context", context), ("Exten", exten),
        ("Priority", priority if exten is not None and priority is not None
         else (1 if exten is not None else None)),
        ("Application", application), ("Data", data), ("Timeout", timeout_ms),
        ("CallerID", caller_id), ("Account", account), ("ChannelId", channel_id),
        ("OtherChannelId", other_channel_id), ("Async", "true")]
    for name, value in (variables or {}).items():
        if "=" in name:
            raise ValueError(f"bad variable name {name!r}")
        fields.append(("Variable", f"{name}={value}"))
    return fields
