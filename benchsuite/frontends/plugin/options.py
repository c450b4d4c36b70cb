"""The plugin's options (the one table: `pipeline/settings.py`) on pytest: each a command-line
flag and an ini key (`benchsuite_<name>`), the flag winning; one reader (`option_value`) types
and checks both, so a bad value is a usage error naming the option (`--epochs: an integer >= 1
expected, got '0'`) before any collection or work.

`pytest --help` shows them in the group "benchsuite" with their metavars and defaults, and each
ini key with its type. The three plugin modules (`__init__`, `broker_fixtures`, `sweep_items`)
each declare their part of the table (`add_options(parser, part)`), so the broker's fixtures
still load on their own (`-p benchsuite.frontends.plugin.broker_fixtures`).

The session's settings are read once into a `SessionConfig` (`session_config`, through
`SessionConfig.from_mapping`, which takes any mapping of option names to values).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from benchsuite.pipeline.settings import (
    BROKER,
    BY_NAME,
    MAIN,
    OPTIONS,
    SWEEP,
    URL_ENV,
    Option,
    SessionConfig,
    shown_default,
)
from benchsuite.recipe.case import Case

__all__ = ["BROKER", "MAIN", "SWEEP", "SessionConfig", "add_options", "base_case",
           "option_value", "session_config"]
GROUP = "benchsuite"
GROUP_TITLE = "benchsuite"  # as README.md names it: pytest --help shows this title


def add_options(parser: pytest.Parser, part: str) -> None:
    """Declare the table's options of one plugin module: a flag and a typed ini key each."""
    group = parser.getgroup(GROUP, GROUP_TITLE)
    for o in (o for o in OPTIONS if o.part == part):
        # the default after the help, where there is one to show (an empty one: the help says)
        shown = not o.switch and o.default != ""
        help_text = f"{o.help} [{shown_default(o.default)}]" if shown else o.help
        if o.switch:
            group.addoption(f"--{o.name}", dest=o.dest, action="store_true", default=None,
                            help=help_text)
        else:
            group.addoption(f"--{o.name}", dest=o.dest, default=None, metavar=o.metavar,
                            help=help_text)
        parser.addini(o.dest, o.help, type=o.ini, default=_ini_default(o))


def _ini_default(o: Option) -> Any:
    return o.default if o.default is not None else "all"


def raw_value(config: pytest.Config, name: str) -> tuple[Any, str]:
    """The option's value as given, and where: the flag, else the ini key (its default when
    not set; the table's default when the option is not registered: a plugin module loaded
    alone), else for --redis-url the environment."""
    o = BY_NAME[name]
    given = config.getoption(o.dest, default=None)
    if given is not None:
        return given, f"--{o.name}"
    try:
        given = config.getini(o.dest)
    except (ValueError, pytest.UsageError) as e:  # not registered, or a bad ini value (pytest 9
        # raises a UsageError naming no key for it)
        if "unknown configuration value" not in str(e) and "no option named" not in str(e):
            raise pytest.UsageError(f"{o.dest}: {e}") from None
        given = o.default
    if name == "redis-url" and not given:
        given = os.environ.get(URL_ENV) or None  # keeps a password off the command line
    return given, o.dest


def option_value(config: pytest.Config, name: str) -> Any:
    """The option's value, read and checked: a bad value is a usage error naming where it
    came from (`--epochs: an integer >= 1 expected, got '0'`)."""
    given, where = raw_value(config, name)
    try:
        return BY_NAME[name].value(given)
    except ValueError as e:
        raise pytest.UsageError(f"{where}: {e}") from None


CONFIG_KEY = pytest.StashKey[SessionConfig]()


def session_config(config: pytest.Config) -> SessionConfig:
    """The session's options as one typed object (`SessionConfig.from_mapping` over what the
    flags and ini keys give), built and checked once: a bad value is a usage error naming the
    option, before any collection or work."""
    if (cached := config.stash.get(CONFIG_KEY, None)) is not None:
        return cached
    given = {o.name: raw_value(config, o.name) for o in OPTIONS}
    try:
        out = SessionConfig.from_mapping({k: v for k, (v, _) in given.items()})
    except ValueError as e:  # "epochs: ..." -> "--epochs: ..." (or the ini key's name)
        name, _, why = str(e).partition(": ")
        where = given[name][1] if name in given else name
        raise pytest.UsageError(f"{where}: {why}") from None
    config.stash[CONFIG_KEY] = out
    return out


def base_case(config: pytest.Config) -> Case:
    """The session's base case: every case setting of the options on a blank recipe (the
    grid, a sweep's trials or a user's `base_case` fixture fill in the rest)."""
    return session_config(config).base


def given(config: pytest.Config, o: Option) -> bool:
    """Whether the user set the option: its flag, or its ini key to other than the default
    (read through `getini`: pytest 9 deprecates `config.inicfg`, and reading it warned once per
    case)."""
    if config.getoption(o.dest, default=None) is not None:
        return True
    try:
        return config.getini(o.dest) != _ini_default(o)
    except (ValueError, pytest.UsageError):  # not registered: a plugin module loaded alone
        return False


def contradictions(config: pytest.Config, case: Case) -> list[str]:
    """A line for each case setting the user gave that this case does not follow (a `Case`
    built by hand in a test, not from the `base_case` fixture): it runs as built, and says so."""
    out = []
    base = session_config(config).base
    for o in OPTIONS:
        if o.field and given(config, o) and getattr(case, o.field) != getattr(base, o.field):
            value = shown_default(getattr(base, o.field))
            out.append(f"{case.label}: --{o.name} {value} was given, but this case has "
                       f"{o.field}={getattr(case, o.field)!r} (it runs as built; build cases "
                       "from the base_case fixture to follow the options)")
    return out
