"""Loads the benchsuite pytest plugin for this checkout (without an install of it).

Where benchsuite is installed, its pytest11 entry point, named after the module, has registered
the plugin already; pytest then skips this entry instead of loading the plugin twice.
"""

pytest_plugins = ["benchsuite.frontends.plugin"]
