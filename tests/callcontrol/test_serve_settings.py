"""Serve and dialer settings: one default per setting (the config dataclass's), shown in
the help from there; emergency numbers under their name, the old name still read."""

from __future__ import annotations

import argparse
import logging

import pytest

from fastagi.campaigns.dialer import DialerConfig
from fastagi.commands import dialer, serve
from fastagi.emergency import DEFAULT_NUMBERS
from fastagi.services import ServeConfig
from fastagi.settings import SettingsError, SettingsSource


def config(environ=None, file_values=None, **cli) -> ServeConfig:
    return serve.load_config(SettingsSource(cli=cli, environ=environ or {},
                                            file_values=file_values or {}))


def test_the_defaults_are_the_config_dataclass_defaults():
    loaded = config()
    assert loaded.emergency_numbers == DEFAULT_NUMBERS == ("911", "112", "999")
    assert loaded.max_call_seconds == ServeConfig().max_call_seconds == 10800
    assert dialer.DEFAULTS["batch"] == DialerConfig.batch


def test_the_help_shows_the_default_from_the_config():
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "(default 911,112,999; env ICTCONTACT_EMERGENCY_NUMBERS; deprecated name emergency-prefixes)" in text
    assert "(default 10800; env ICTCONTACT_MAX_CALL_SECONDS)" in text
    assert "--emergency-prefixes" not in text        # accepted, not advertised


@pytest.mark.parametrize("where", ["cli", "env", "file"])
def test_the_old_name_is_still_read_with_a_warning(where, caplog):
    given = {"cli": dict(emergency_prefixes=("112",)),
             "env": dict(environ={"ICTCONTACT_EMERGENCY_PREFIXES": "112"}),
             "file": dict(file_values={"emergency_prefixes": "112"})}[where]
    with caplog.at_level(logging.WARNING):
        assert config(**given).emergency_numbers == ("112",)
    assert "deprecated: use --emergency-numbers" in caplog.text


def test_the_new_name_wins_over_the_old_one(caplog):
    loaded = config(environ={"ICTCONTACT_EMERGENCY_NUMBERS": "911",
                             "ICTCONTACT_EMERGENCY_PREFIXES": "112"})
    assert loaded.emergency_numbers == ("911",)
    assert "deprecated" not in caplog.text


@pytest.mark.parametrize("bad", ["", "1", "11a", "12345678901", "911,,x"])
def test_emergency_numbers_must_be_whole_numbers_of_digits(bad):
    with pytest.raises(SettingsError, match="ICTCONTACT_EMERGENCY_NUMBERS"):
        config(environ={"ICTCONTACT_EMERGENCY_NUMBERS": bad or ","})


def test_the_parser_accepts_the_old_option():
    parser = argparse.ArgumentParser()
    dialer.add_arguments(parser)
    args = parser.parse_args(["--emergency-prefixes", "112,911"])
    assert args.emergency_prefixes == ("112", "911")
