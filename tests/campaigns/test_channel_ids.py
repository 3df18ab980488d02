"""The ids of the two halves of a campaign's Local channel: Asterisk refuses a new
channel's uniqueid when a live channel's id starts with it, so the ;1 id must never
start with the ;2 id (the attempt's). Seen on Asterisk 22.10.1 with `<id>;1` / `<id>`:
"Channel Unique ID '<id>' already in use", and no campaign call ever reached anyone."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor

from fastagi.store.dialer import DialOrder
from fastagi.testing.fake_pbx import FakePbx
from fastagi.campaigns.originate import first_half_id, originate_fields
from tests.support.waiting import wait_until

ORDER = DialOrder(attempt_id=7, uniqueid="ictc-0123456789abcdef01234567", campaign_id=1,
                  contact_id=1, client_code="acme", phone="442071234567", caller_id=None,
                  recording="custom/promo")


def test_the_first_half_id_never_starts_with_the_attempt_id():
    fields = dict(originate_fields(ORDER, 30))
    assert fields["OtherChannelId"] == ORDER.uniqueid
    assert fields["ChannelId"] == first_half_id(ORDER.uniqueid) == "ictc1-0123456789abcdef01234567"
    for one, other in ((fields["ChannelId"], fields["OtherChannelId"]),
                       (fields["OtherChannelId"], fields["ChannelId"])):
        assert not one.lower().startswith(other.lower())


@pytest_twisted.ensureDeferred
async def test_the_fake_pbx_refuses_ids_asterisk_refuses():
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from fastagi.ami.client import AmiClient
    pbx = FakePbx(reactor, agi_port=1)
    port = pbx.listen(reactor)
    ami = AmiClient(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), reactor,
                    "ictcontact", "s3cret", name="ids-test", min_delay=0.1)
    ami.start()
    try:
        await ami.when_connected()
        old_scheme = [("Channel", "Local/s@ict-campaign/n"), ("Context", "ict-campaign-play"),
                      ("Exten", "s"), ("Priority", 1), ("ChannelId", f"{ORDER.uniqueid};1"),
                      ("OtherChannelId", ORDER.uniqueid), ("Async", "true")]
        result = await ami.send("Originate", old_scheme, final_event="OriginateResponse",
                                final_timeout=5)
        assert result.final.get("Response") == "Failure"
        assert pbx.id_conflicts == [ORDER.uniqueid]
        assert pbx.live_ids == set()                     # nothing left allocated
        await wait_until(lambda: pbx.open_calls == 0, what="the call closed")
    finally:
        await ami.stop()
        await port.stopListening()
