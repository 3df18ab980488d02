"""How the dialer starts one campaign call: an async AMI Originate of a Local channel
into [ict-campaign] (dialplan/ictcontact.conf), answered by `OriginateResponse`.

The dialer only needs `Originate`: a callable taking a DialOrder and returning a Deferred
that fires with an OriginateOutcome, or errbacks when the call could not be asked for.
`AmiOriginator` is the one over fastagi.ami; tests may pass any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred

from fastagi import channel_vars as v
from fastagi.ami import actions
from fastagi.ami.actions import OriginateResult
from fastagi.ami.client import AmiClient
from fastagi.campaigns.channel_ids import first_half_id
from fastagi.dialplan import names
from fastagi.store.dialer import DialOrder

LOCAL_CHANNEL = f"Local/s@{names.CAMPAIGN}/n"   # /n: never optimised away (keeps ;2's handler)


@dataclass(frozen=True)
class OriginateOutcome:
    answered: bool       # OriginateResponse Success: the contact answered
    reason: str          # Asterisk's reason name (answered, busy, no-answer, failed, ...)


class Originate(Protocol):
    def __call__(self, order: DialOrder) -> Deferred[OriginateOutcome]: ...


def answered_goes_to(order: DialOrder) -> tuple[str, str, int]:
    """(context, exten, priority) the answered contact is sent to: a progressive
    campaign's queue routine, else the recording routine (dialplan/ictcontact.conf), else
    the operator-named destination."""
    if order.queue is not None:
        return names.CAMPAIGN_QUEUE, "s", 1
    if order.recording is not None:
        return names.CAMPAIGN_PLAY, "s", 1
    if order.destination is None:
        raise ValueError(f"attempt {order.attempt_id} has no queue, recording or destination")
    return order.destination.context, order.destination.exten, order.destination.priority


def originate_fields(order: DialOrder, timeout_seconds: float) -> list[tuple[str, object]]:
    """The Originate headers for `order`. OtherChannelId is the uniqueid of the ;2 half,
    which runs authorize: the attempt's link to its call record. The caller ID sets ;1's
    connected line, which the ;2 half presents as its caller ID (main/pbx.c
    pbx_outgoing_attempt, main/core_unreal.c ast_unreal_call_setup)."""
    context, exten, priority = answered_goes_to(order)
    variables = {v.CAMPAIGN_CLIENT: order.client_code, v.CAMPAIGN_NUMBER: order.phone,
                 v.CAMPAIGN_ATTEMPT: str(order.attempt_id)}
    if order.recording:
        variables[v.CAMPAIGN_RECORDING] = order.recording
    if order.queue:
        variables[v.CAMPAIGN_QUEUE] = order.queue
        variables[v.CAMPAIGN_QUEUE_WAIT] = str(order.queue_wait_seconds)
    return actions.originate_fields(
        LOCAL_CHANNEL, context=context, exten=exten, priority=priority,
        timeout_ms=int(timeout_seconds * 1000), caller_id=order.caller_id or None,
        account=order.client_code, channel_id=first_half_id(order.uniqueid),
        other_channel_id=order.uniqueid, variables=variables)


class AmiOriginator:
    """Originate over an AmiClient; the OriginateResponse must come within the originate
    timeout plus `margin_seconds`."""

    def __init__(self, client: AmiClient, timeout_seconds: float,
                 margin_seconds: float = 15.0) -> None:
        self.client = client
        self.timeout_seconds = timeout_seconds
        self.margin_seconds = margin_seconds

    def __call__(self, order: DialOrder) -> Deferred[OriginateOutcome]:
        sent = self.client.originate(originate_fields(order, self.timeout_seconds),
                                     response_timeout=self.timeout_seconds + self.margin_seconds)
        return sent.addCallback(_outcome)


def _outcome(result: OriginateResult) -> OriginateOutcome:
    return OriginateOutcome(answered=result.success, reason=result.reason_name)
