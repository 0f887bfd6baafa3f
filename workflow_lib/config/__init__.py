"""The configuration: its schema, its loading and resolution, the search space, the keys derived from it."""

from workflow_lib.config.load import *  # noqa: F403 - the public names of load.py (its __all__)
from workflow_lib.config.load import __all__  # noqa: F401
