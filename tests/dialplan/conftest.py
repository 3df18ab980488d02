"""The dialplan Asterisk would load: the sample extensions.conf, the shipped routines and
the contexts generated for the sample clients."""

from __future__ import annotations

import pytest

from fastagi.dialplan.confparse import dialplan_from_texts
from fastagi.dialplan.generate import render
from tests.dialplan.helpers import DIALPLAN, EMERGENCY, EXTENSIONS_CONF, SAMPLE_CLIENTS


@pytest.fixture(scope="module")
def plan():
    return dialplan_from_texts(
        (str(EXTENSIONS_CONF), EXTENSIONS_CONF.read_text()),
        (str(DIALPLAN), DIALPLAN.read_text()),
        ("ictcontact-clients.conf", render(SAMPLE_CLIENTS, EMERGENCY)))
