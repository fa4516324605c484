"""What a CPO's settlement runs on: the hold per session, the eMSP's fee and the time limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from evgi.config import Settings
from evgi.core.errors import ValidationError
from evgi.core.units import Money

_BASIS_POINTS = 10_000


@dataclass(frozen=True)
class SettlementTerms:
    hold: Money  # pre-authorised per session
    fee_bp: int = 0  # the eMSP's fee, in basis points of the session's cost, paid on top of it
    session_timeout: timedelta = timedelta(hours=24)
    escrow_grace: timedelta = timedelta(hours=24)
    quote_validity: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.hold.minor <= 0:
            raise ValidationError(f"the hold per session must be positive, not {self.hold}")
        if not 0 <= self.fee_bp <= _BASIS_POINTS:
            raise ValidationError("the eMSP fee is 0 to 10000 basis points of the cost")
        if self.session_timeout <= timedelta(0) or self.escrow_grace < timedelta(0):
            raise ValidationError("the session timeout must be positive and the grace not negative")

    @classmethod
    def from_settings(cls, settings: Settings) -> SettlementTerms:
        return cls(
            Money.parse(settings.settlement_hold),
            settings.settlement_fee_bp,
            timedelta(seconds=settings.settlement_session_timeout),
            timedelta(seconds=settings.settlement_session_timeout),
        )

    @property
    def escrow_timeout_s(self) -> int:
        return int((self.session_timeout + self.escrow_grace).total_seconds())

    def shares(self, cost: int) -> tuple[int, int]:
        """(to the payee, to the eMSP) for a session that cost `cost`, within the hold."""
        fee = cost * self.fee_bp // _BASIS_POINTS
        payee = min(cost, self.hold.minor)
        return payee, min(fee, self.hold.minor - payee)
