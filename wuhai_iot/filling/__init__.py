"""Gas-cylinder supervision: fill decisions, fill records and post-fill alarms, traceability and the
registry changes staff make by hand. The hooks that plug it into the platform are in ``plugin.py``."""
