"""The uniqueids the dialer gives the two halves of a campaign's Local channel.

ATTEMPT_PREFIX marks a channel as a campaign attempt's: schema/061 checks it on
campaign_attempts.uniqueid and its triggers match calls to attempts by it, so a change
here needs a new schema file that changes those too.
"""

from __future__ import annotations

import secrets

ATTEMPT_PREFIX = "ictc-"        # the ;2 half, which runs authorize (schema/061)
FIRST_HALF_PREFIX = "ictc1-"    # the ;1 half


def attempt_uniqueid() -> str:
    """A new attempt's uniqueid: the prefix and 24 random hex digits."""
    return ATTEMPT_PREFIX + secrets.token_hex(12)


def first_half_id(uniqueid: str) -> str:
    """The ;1 half's uniqueid for an attempt whose ;2 half is `uniqueid`. It must not
    start with `uniqueid`: Asterisk refuses a new channel's id when an existing channel's
    id merely starts with it (main/channel.c do_ids_conflict, channelstorage_ao2_legacy.c
    by_uniqueid_cb compares with strncasecmp), so `<id>;1` with `<id>` makes every Local
    Originate fail with "Channel Unique ID '<id>' already in use" (seen on Asterisk 22)."""
    return FIRST_HALF_PREFIX + uniqueid.removeprefix(ATTEMPT_PREFIX)
