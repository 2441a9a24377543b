"""wuhai-iot: the city's special-equipment safety platform."""

__version__ = "0.1.0"
