"""The built-in protocols pass the same contract a vendor's protocol runs (wuhai_iot.testing)."""

from __future__ import annotations

from conftest import FIXTURES

from wuhai_iot.protocols.elink import ElinkProtocol
from wuhai_iot.protocols.gasfill import GasfillProtocol
from wuhai_iot.protocols.jt808 import Jt808Protocol
from wuhai_iot.protocols.lmt import LmtProtocol
from wuhai_iot.testing import ProtocolContract


class TestElinkContract(ProtocolContract, protocol=ElinkProtocol(), fixtures=FIXTURES / "elink"):
    pass


class TestLmtContract(ProtocolContract, protocol=LmtProtocol(), fixtures=FIXTURES / "lmt"):
    pass


class TestGasfillContract(ProtocolContract, protocol=GasfillProtocol(), fixtures=FIXTURES / "gasfill"):
    pass


class TestJt808Contract(ProtocolContract, protocol=Jt808Protocol(), fixtures=FIXTURES / "jt808"):
    pass
