"""Alarms: one place for their lifecycle, whatever raised them (a lift's rule or terminal, a filling check).

An alarm has a *condition* (active / cleared, set by the device or a rule) and a *handling*
(raised → acknowledged → resolved, set by staff). One episode is one alarm: while an alarm of a kind on a
subject is active, repeats update it; a flapping condition (raised and cleared ``flapping_count`` times in
``flapping_window_s``) collapses into one alarm marked flapping.

``model`` is what an alarm is; ``book`` the one place that changes alarms (and sends the ``alarm_changed``
notifications after commit); ``queries`` reads them for pages and the API; ``webhook`` is the built-in
notifier. See docs/alarms.md.
"""
