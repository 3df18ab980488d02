"""Where a setting's value comes from: the command line, then the environment, then the
config file, then the built-in default.

The config file is INI with one `[ictcontact]` section whose keys are the long option names
with dashes or underscores (`db`, `listen`, `session-timeout`, ...). Its path is `--config`,
else `ICTCONTACT_CONFIG`, else /etc/ictcontact/ictcontact.conf when that file exists.
Environment variables are `ICTCONTACT_` + the name in upper case with underscores
(`ICTCONTACT_DB`, `ICTCONTACT_LISTEN`, `ICTCONTACT_SESSION_TIMEOUT`).
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

DEFAULT_CONFIG_PATH = "/etc/ictcontact/ictcontact.conf"
DEFAULT_DB_URL = "mysql+pymysql://root@127.0.0.1:3306/ictcontact"
SECTION = "ictcontact"

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def env_name(name: str) -> str:
    return "ICTCONTACT_" + name.upper().replace("-", "_")


FILE_ONLY_KEYS = frozenset({"ami_secret", "alert_smtp_password"})  # secrets: never options,
# only the config file or the environment


def read_config_file(path: str | None, environ: Mapping[str, str],
                     known_keys: frozenset[str] | None = None) -> dict[str, str]:
    """Read the `[ictcontact]` section of the config file, keys normalised to underscores.

    An explicitly named file that is missing is an error; the default path is optional.
    With `known_keys` (every setting any command reads), another key is an error: a typo
    must not be silently ignored.
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
    values = {key.replace("-", "_"): value for key, value in parser.items(SECTION)}
    if known_keys is not None:
        for key in values:
            if key not in known_keys | FILE_ONLY_KEYS:
                raise SettingsError(f"config file {chosen}: unknown key "
                                    f"{key.replace('_', '-')} in [{SECTION}] (a typo? "
                                    f"`ictcontact COMMAND --help` lists the settings)")
    return values


@dataclass
class SettingsSource:
    """Resolves named settings in precedence order: CLI, environment, file, default."""

    cli: Mapping[str, Any]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    file_values: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str, default: Any = None, convert: Callable[[str], Any] = str,
            aliases: tuple[str, ...] = ()) -> Any:
        """The value of `name`; `aliases` are deprecated names still read after it (in
        each place: CLI, environment, file), with a warning saying the new name."""
        key = name.replace("-", "_")
        keys = (key, *(a.replace("-", "_") for a in aliases))
        for each in keys:
            value = self.cli.get(each)
            if value is not None:
                _deprecated(each, key, "--" + each.replace("_", "-"))
                return value
        for each in keys:
            for origin, raw in ((env_name(each), self.environ.get(env_name(each))),
                                (f"config file key {each}", self.file_values.get(each))):
                if raw is not None and raw != "":
                    _deprecated(each, key, origin)
                    try:
                        return convert(raw)
                    except (TypeError, ValueError) as exc:
                        raise SettingsError(f"{origin}={raw!r} is not valid: {exc}") from exc
        return default


def _deprecated(used: str, name: str, origin: str) -> None:
    if used != name:
        dashed = name.replace("_", "-")
        log.warning("%s is deprecated: use --%s, %s or the config file key %s instead",
                    origin, dashed, env_name(name), dashed)


@dataclass(frozen=True)
class Option:
    """One setting of a command: how its text is read and what it is for. Its default is
    NOT here: it is the field default of the command's config dataclass, and the help
    shows it from there (`shown` replaces it where the value alone says little)."""

    convert: Callable[[str], Any] = str
    help: str = ""
    shown: str | None = None
    aliases: tuple[str, ...] = ()     # deprecated names, still read


def dataclass_defaults(*classes: type) -> dict[str, Any]:
    """Field name -> default of each dataclass (a default_factory is called)."""
    defaults: dict[str, Any] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
    return defaults


def show_default(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def add_options(parser: argparse.ArgumentParser, options: Mapping[str, Option],
                defaults: Mapping[str, Any]) -> None:
    """One `--name` per option, its help ending with the default and the environment
    variable; each deprecated alias is accepted but not listed."""
    for name, option in options.items():
        metavar = "SECONDS" if "seconds" in name or "timeout" in name else None
        shown = option.shown if option.shown is not None else show_default(defaults[name])
        old_names = "".join(f"; deprecated name {alias.replace('_', '-')}"
                            for alias in option.aliases)
        parser.add_argument("--" + name.replace("_", "-"), type=option.convert,
                            metavar=metavar, help=f"{option.help} (default {shown}; "
                                                  f"env {env_name(name)}{old_names})")
        for alias in option.aliases:
            parser.add_argument("--" + alias.replace("_", "-"), dest=alias,
                                type=option.convert, help=argparse.SUPPRESS)


def load_options(source: "SettingsSource", options: Mapping[str, Option],
                 defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Every option's value by name (CLI, environment, file, default)."""
    return {name: source.get(name, defaults.get(name), option.convert, option.aliases)
            for name, option in options.items()}


def source_from_args(args: Any, environ: Mapping[str, str] | None = None) -> SettingsSource:
    """Build a SettingsSource from parsed argparse args (None means 'not given')."""
    env = dict(os.environ) if environ is None else dict(environ)
    cli = {k: v for k, v in vars(args).items() if v is not None and k != "config_keys"}
    return SettingsSource(cli=cli, environ=env,
                          file_values=read_config_file(cli.get("config"), env,
                                                       getattr(args, "config_keys", None)))


def database_url(source: SettingsSource) -> str:
    """The --db URL; SettingsError when it cannot be read or names no known dialect."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    url = source.get("db", DEFAULT_DB_URL)
    try:
        dialect = make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise SettingsError(f"--db: {exc} (write e.g. {DEFAULT_DB_URL})") from exc
    if dialect.name not in ("mysql", "mariadb"):
        raise SettingsError(f"--db: the {dialect.name} dialect is not supported: ictcontact "
                            f"runs on MariaDB (write e.g. {DEFAULT_DB_URL})")
    return url
