"""The rule engine on event time, for any kind of subject (a lift, a vehicle): docs/time.md."""
