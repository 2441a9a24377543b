"""The city's districts. Everywhere a district is accepted (census, ``--district``, API filters), its name
or its code will do; it is stored and compared by code."""

from __future__ import annotations

DISTRICTS: dict[str, str] = {
    "150302": "海勃湾区",
    "150304": "乌达区",
    "150303": "海南区",
}
"""District code → name (the codes are the national administrative division codes)."""

_BY_NAME = {name: code for code, name in DISTRICTS.items()}


class UnknownDistrict(ValueError):
    """The text names no district of the city."""


def parse_district(text: str) -> str:
    """The code of the district named by ``text`` (a name such as 海勃湾区 or a code such as 150302)."""
    value = text.strip()
    if value in DISTRICTS:
        return value
    if value in _BY_NAME:
        return _BY_NAME[value]
    known = ", ".join(f"{name} ({code})" for code, name in DISTRICTS.items())
    raise UnknownDistrict(f"unknown district {text!r}; expected one of {known}")

