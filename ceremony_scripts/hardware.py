"""The hardware a ceremony command hands to the library: the PKCS#11 token and the cards.

* :class:`Pkcs11Token` -- the token chosen by ``--module``/``--token``; emulated tokens
  (SoftHSM) only with ``--allow-emulated``.  Nothing is opened until the ceremony logs in.
* :class:`ReaderCards` -- cards one at a time in a PC/SC reader, with the admin-approval
  and witness loops of :mod:`ceremony_scripts.quorum_cards`; emulated (test) cards only
  with ``--allow-emulated``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ceremony_scripts import quorum_cards
from coldvault.backends.pkcs11.keystore import PinRole, Pkcs11Keystore, init_pin, set_pin
from coldvault.ceremonies.hardware import CardInReader
from coldvault.ceremonies.operator import Operator
from coldvault.ceremonies.run import CeremonyRun
from coldvault.quorum.approvals import Approval
from coldvault.quorum.roster import CardHolder, Roster
from coldvault.records.transcript import Signer


@dataclass(frozen=True)
class Pkcs11Token:
    """One PKCS#11 token by label (implements :class:`coldvault.ceremonies.hardware.HsmToken`)."""

    module: str
    label: str
    allow_emulated: bool = False

    def login(self, user_pin: str) -> Pkcs11Keystore:
        return Pkcs11Keystore.open(
            self.module, self.label, user_pin, allow_emulated=self.allow_emulated
        )

    def change_so_pin(self, old_pin: str, new_pin: str) -> None:
        set_pin(self.module, self.label, role=PinRole.SO, old_pin=old_pin, new_pin=new_pin,
                allow_emulated=self.allow_emulated)  # fmt: skip

    def init_user_pin(self, so_pin: str, user_pin: str) -> None:
        init_pin(self.module, self.label, so_pin=so_pin, user_pin=user_pin,
                 allow_emulated=self.allow_emulated)  # fmt: skip


class ReaderCards:
    """Cards in a PC/SC reader (implements :class:`coldvault.ceremonies.hardware.Cards`)."""

    def __init__(self, op: Operator, *, allow_emulated: bool = False) -> None:
        self._op = op
        self._allow_emulated = allow_emulated

    def in_reader(self, prompt: str) -> CardInReader:
        return quorum_cards.card_in_reader(self._op, prompt, allow_emulated=self._allow_emulated)

    def admin_signatures(
        self,
        run: CeremonyRun,
        roster: Roster,
        data: bytes,
        *,
        what: str,
        refuse: Callable[[CardHolder], None] | None = None,
    ) -> tuple[Approval, ...]:
        return quorum_cards.collect_admin_signatures(
            self._op, run, roster, data, what=what, allow_emulated=self._allow_emulated,
            refuse=refuse,
        )  # fmt: skip

    def ceremony_quorum(
        self, run: CeremonyRun, roster: Roster, ceremony: str, parameters: dict[str, Any]
    ) -> None:
        quorum_cards.collect_admin_quorum(
            self._op, run, roster, ceremony, parameters, allow_emulated=self._allow_emulated
        )

    def witnesses(self, count: int, roster: Roster | None) -> list[Signer]:
        return quorum_cards.witness_signers(self._op, count, roster, self._allow_emulated)


__all__ = ["Pkcs11Token", "ReaderCards"]
