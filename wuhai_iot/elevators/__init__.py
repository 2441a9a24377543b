"""Elevator remote monitoring: the rule engine and the lift rules, rescues, maintenance visits, and the
queries that say what a lift looks like now. ``plugin`` wires them into the platform."""
