"""A handler that crashes still gets the dialplan a definite answer, and the log keeps the
crash's traceback (docs/fastagi.md: "ERROR (with traceback) for an unexpected exception").
Found by the fuzzing: the ERROR line ended in "NoneType: None" because the traceback was
asked for after the `except` block had ended."""

from __future__ import annotations

import logging

from fastagi import channel_vars as v, reasons
from fastagi.agi.server import AgiServerFactory
from tests.agi.helpers import env_block, make_services
from tests.support.chats import connect, finish


def deep_in_the_handler():
    raise ZeroDivisionError("the bug itself")


async def crashing(channel, services):
    deep_in_the_handler()


def test_unexpected_exception_is_answered_and_logged_with_its_traceback(caplog):
    caplog.set_level(logging.INFO, logger="fastagi")
    services = make_services()
    factory = AgiServerFactory({"crash": crashing}, services)
    protocol, transport = connect(factory)
    protocol.dataReceived(env_block("crash"))
    for _ in range(3):  # the REJECT answer, one command at a time
        protocol.dataReceived(b"200 result=1\n")
    assert transport.disconnecting
    finish(protocol, transport)
    assert transport.value().count(b"\n") == 3
    assert f'"{v.REASON}" "{reasons.UNAVAILABLE}"'.encode() in transport.value()
    [record] = [r for r in caplog.records if r.name == "fastagi.agi.server"]
    assert record.levelno == logging.ERROR
    assert "unexpected ZeroDivisionError: the bug itself" in record.getMessage()
    assert record.exc_info and record.exc_info[0] is ZeroDivisionError
    assert "deep_in_the_handler" in caplog.text  # the traceback reaches the log
