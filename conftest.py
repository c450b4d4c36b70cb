"""Loads the benchsuite pytest plugin for this checkout."""

pytest_plugins = ["benchsuite.pytest_plugin"]
