"""The shipped files a campaign call needs: the dialplan routines the dialer originates
into, and a music-on-hold class for a progressive contact waiting for its agent."""

from __future__ import annotations

from fastagi.dialplan import names
from fastagi.dialplan.confparse import read_conf
from tests.dialplan.helpers import CONF_DIR

DIALPLAN = CONF_DIR.parent / "dialplan" / "ictcontact.conf"


def test_a_default_music_class_plays_files_from_the_data_directory():
    conf = read_conf(CONF_DIR / "musiconhold.conf")
    default = conf.section("default")
    assert default.get("mode") == "files"
    assert default.get("directory") == "moh"     # relative to astdatadir, as packaged


def test_the_progressive_routine_queues_the_contact_with_the_campaigns_wait():
    text = DIALPLAN.read_text()
    routine = text.split(f"\n[{names.CAMPAIGN_QUEUE}]\n", 1)[1].split("\n[", 1)[0]
    steps = [line.strip() for line in routine.splitlines()
             if line.strip().startswith(("exten", "same"))]
    queue = next(s for s in steps if "Queue(" in s)
    # no `r`: an answered contact hears music on hold, not ringing; timeout = 5th argument
    assert queue.endswith("Queue(${ICTCONTACT_CAMPAIGN_QUEUE},,,,${ICTCONTACT_CAMPAIGN_QUEUE_WAIT})")
    assert not any("Answer(" in s for s in steps)
    assert steps[-1].endswith("Hangup()")
