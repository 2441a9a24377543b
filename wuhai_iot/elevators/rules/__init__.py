"""The rule engine: small named rules turn normalised events and time into alarm transitions.

``base`` defines a rule, ``builtin`` holds the built-in lift rules (registered through the
``register_rules`` hook, as a deployment's own rules are), ``engine`` runs them.
"""
