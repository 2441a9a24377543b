"""``FixedLayout``: the struct reading of a construct definition gives what construct itself gives."""

from __future__ import annotations

import construct as c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuhai_iot.protocols import elink, gasfill
from wuhai_iot.protocols.base import FixedLayout

ELINK_STATUS_FRAME = c.Struct(*elink.Header.subcons, *elink.StatusRecord.subcons)
ELINK_ACK_FRAME = c.Struct(*elink.Header.subcons, *elink.AckBody.subcons)


@pytest.mark.parametrize("definition", [ELINK_STATUS_FRAME, ELINK_ACK_FRAME, elink.BatchSample])
@given(data=st.data())
def test_unpack_and_pack_agree_with_construct(definition: c.Struct, data: st.DataObject) -> None:
    layout = FixedLayout(definition)
    raw = bytearray(data.draw(st.binary(min_size=layout.size, max_size=layout.size)))
    if raw[:2] != b"EL" and "magic" in layout.names:
        raw[:2] = b"EL"
    parsed = definition.parse(bytes(raw))
    values = layout.unpack(bytes(raw))
    assert values == tuple(parsed[name] for name in layout.names)
    others = [value for name, value in zip(layout.names, values, strict=True) if name != "magic"]
    assert layout.pack(*others) == definition.build(parsed) == bytes(raw)


def test_a_wrong_constant_is_refused_like_construct_does() -> None:
    layout = FixedLayout(ELINK_ACK_FRAME)
    raw = b"XL" + bytes(layout.size - 2)
    with pytest.raises(c.ConstError):
        ELINK_ACK_FRAME.parse(raw)
    with pytest.raises(ValueError, match="magic"):
        layout.unpack(raw)


def test_variable_fields_have_no_fixed_layout() -> None:
    with pytest.raises(TypeError, match="no fixed struct equivalent"):
        FixedLayout(c.Struct(*elink.Header.subcons, *elink.Bodies[elink.COMMAND_REPLY].subcons))
    with pytest.raises(TypeError):
        FixedLayout(gasfill.Bodies[gasfill.LOGIN])
