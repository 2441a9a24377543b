"""Plugin loading: built-in features and vendor packages register through the same hooks."""

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.plugins.manager import get_plugin_manager, protocols

__all__ = ["hookimpl", "get_plugin_manager", "protocols"]
