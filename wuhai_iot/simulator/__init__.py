"""Simulated devices and a simulated city: what ``wuhai-iot demo``, ``simulate`` and ``census generate`` run.

They live in the package (not in device_fixtures/) so that the demo and the load generator work from an
installed wheel. Every simulated terminal speaks its wire protocol through that protocol's own encoder
and behaves as its vendor document says: LOGIN first, heartbeats, buffering while disconnected,
resending unacknowledged messages after 10 s, reconnecting with backoff.
"""
