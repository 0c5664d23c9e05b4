"""E-mail addresses Revisit will send to: one rule for the policy's recipients and the CRM's.

Plain ASCII addresses only: an internationalised one needs SMTPUTF8, which many servers lack,
and a message refused for it would reach nobody.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*"
                      r"\.[A-Za-z]{2,}$")


def valid_address(address: object) -> bool:
    return isinstance(address, str) and bool(_ADDRESS.fullmatch(address.strip()))


__all__ = ["valid_address"]
