"""The pipeline core, domain-free: TCP connections cut bytes into frames with their protocol
(``listener``), and ``ingest`` checks logins, stores each message exactly once and hands its events
to the consumers and request handlers that the domain packages register."""
