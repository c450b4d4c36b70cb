"""pytest's rootdir and ini file, decided again once benchsuite's options are known.

pytest finds its rootdir and ini file from the command line *before* it loads plugins, so the
value of a plugin option written space-separated (`--schedules /abs/dir`, `--recipes
/abs/r.yaml`, `--latency-baseline /abs/b.json`, `--data-dir /abs/dir`, `--sweep /abs/s.yaml`)
reads to it as a test path: the rootdir moves to that folder, the project's pytest.ini is not
read (no testpaths, no addopts) and, from a checkout, both `benchsuite/experiments/test_latency.py`
and `experiments/test_latency.py` are collected: every case twice. The `--opt=VALUE` form was
fine.

`fix_setup` runs in the plugin's ``pytest_load_initial_conftests`` (once every plugin's options
are declared, before any conftest is loaded or anything collected): it decides rootdir and ini
file again as pytest does, with the option values known as such, and when the answer differs it
takes the right ones (and that ini file's addopts). pytest has no public API for this: the
private attributes used are those of the pinned pytest (requirements.txt); should they change,
the session stops with a usage error that says to write `--opt=VALUE` rather than run cases
twice.
"""

from __future__ import annotations

import copy
import os
import shlex

import pytest


def fix_setup(config: pytest.Config, args: list[str]) -> None:
    """Take the rootdir and ini file the command line means (see the module's docstring);
    `args` is the hook's argument list (ini addopts + PYTEST_ADDOPTS + the command line),
    changed in place."""
    from _pytest.config.findpaths import determine_setup, parse_override_ini

    parser = config._parser
    given = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]
    ns = parser.parse_known_args(given, namespace=copy.copy(config.option))
    rootpath, inipath, inicfg, ignored = determine_setup(
        inifile=ns.inifilename, override_ini=ns.override_ini, args=ns.file_or_dir,
        rootdir_cmd_arg=ns.rootdir or None, invocation_dir=config.invocation_params.dir)
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return
    old_addopts = list(config.getini("addopts"))
    if args[len(old_addopts):] != given:
        raise pytest.UsageError(
            f"pytest took {config.rootpath} as its rootdir from an option's value (it reads "
            f"option values as test paths before plugins load); write the benchsuite options "
            f"as --opt=VALUE (e.g. --schedules=/abs/dir)")
    try:
        config._rootpath, config._inipath = rootpath, inipath
        config._inicfg, config._ignored_config_files = inicfg, ignored
        config._inicache.clear()
    except AttributeError as e:  # another pytest than the pinned one
        raise pytest.UsageError(
            f"pytest took {config.rootpath} as its rootdir from an option's value, and this "
            f"pytest cannot be corrected ({e}); write the benchsuite options as --opt=VALUE "
            "(e.g. --schedules=/abs/dir)") from None
    parser.extra_info["rootdir"] = str(rootpath)
    parser.extra_info["inifile"] = str(inipath)
    addopts = list(config.getini("addopts"))
    args[:] = addopts + given
    config.known_args_namespace = parser.parse_known_args(args, namespace=copy.copy(config.option))
    if overrides := parse_override_ini(config.known_args_namespace.override_ini):
        config._inicfg.update(overrides)
        config._inicache.clear()
    if config.known_args_namespace.confcutdir is None:
        config.known_args_namespace.confcutdir = str(inipath.parent if inipath else rootpath)
    if config.getini("pythonpath"):
        config._configure_python_path()
    config.pluginmanager.consider_preparse(addopts, exclude_only=False)
