"""Where a setting's value comes from: the command line, then the environment, then the
config file, then the built-in default.

The config file is INI with one `[ictcontact]` section whose keys are the long option names
with dashes or underscores (`db`, `listen`, `session-timeout`, ...). Its path is `--config`,
else `ICTCONTACT_CONFIG`, else /etc/ictcontact/ictcontact.conf when that file exists.
Environment variables are `ICTCONTACT_` + the name in upper case with underscores
(`ICTCONTACT_DB`, `ICTCONTACT_LISTEN`, `ICTCONTACT_SESSION_TIMEOUT`).
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

DEFAULT_CONFIG_PATH = "/etc/ictcontact/ictcontact.conf"
DEFAULT_DB_URL = "mysql+pymysql://root@127.0.0.1:3306/ictcontact"
SECTION = "ictcontact"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def env_name(name: str) -> str:
    return "ICTCONTACT_" + name.upper().replace("-", "_")


def read_config_file(path: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """Read the `[ictcontact]` section of the config file, keys normalised to underscores.

    An explicitly named file that is missing is an error; the default path is optional.
    """
    explicit = path or environ.get("ICTCONTACT_CONFIG")
    chosen = explicit or DEFAULT_CONFIG_PATH
    if not os.path.exists(chosen):
        if explicit:
            raise SettingsError(f"config file {chosen} does not exist")
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(chosen, encoding="utf-8")
    except configparser.Error as exc:
        raise SettingsError(f"config file {chosen} cannot be parsed: {exc}") from exc
    if not parser.has_section(SECTION):
        return {}
    return {key.replace("-", "_"): value for key, value in parser.items(SECTION)}


@dataclass
class SettingsSource:
    """Resolves named settings in precedence order: CLI, environment, file, default."""

    cli: Mapping[str, Any]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    file_values: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str, default: Any = None, convert: Callable[[str], Any] = str) -> Any:
        key = name.replace("-", "_")
        value = self.cli.get(key)
        if value is not None:
            return value
        for origin, raw in ((env_name(key), self.environ.get(env_name(key))),
                            (f"config file key {key}", self.file_values.get(key))):
            if raw is not None and raw != "":
                try:
                    return convert(raw)
                except (TypeError, ValueError) as exc:
                    raise SettingsError(f"{origin}={raw!r} is not valid: {exc}") from exc
        return default


def source_from_args(args: Any, environ: Mapping[str, str] | None = None) -> SettingsSource:
    """Build a SettingsSource from parsed argparse args (None means 'not given')."""
    env = dict(os.environ) if environ is None else dict(environ)
    cli = {k: v for k, v in vars(args).items() if v is not None}
    return SettingsSource(cli=cli, environ=env,
                          file_values=read_config_file(cli.get("config"), env))


def database_url(source: SettingsSource) -> str:
    return source.get("db", DEFAULT_DB_URL)
