"""Energy, power and money as integers: Wh, W and minor currency units, never floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NewType

from evgi.core.errors import ValidationError

WattHours = NewType("WattHours", int)
Watts = NewType("Watts", int)

# ISO 4217 minor-unit exponents of the currencies charging networks settle in.
MINOR_UNITS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "CNY": 2,
    "INR": 2,
    "BRL": 2,
    "MXN": 2,
    "SGD": 2,
    "HKD": 2,
    "ZAR": 2,
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "CLP": 0,
    "KWD": 3,
    "BHD": 3,
}


# ASCII digits only: str.isdigit() and int() also take other scripts' digits and superscripts.
_DECIMAL = re.compile(r"(-?[0-9]+)(?:\.([0-9]*))?")


def kwh_to_wh(kwh: str | int) -> WattHours:
    """Parse a decimal kWh string exactly (e.g. '12.345' -> 12345 Wh); floats are refused."""
    if isinstance(kwh, bool) or not isinstance(kwh, str | int):
        raise ValidationError(f"{kwh!r} is not a kWh amount: pass a decimal string or an int")
    text = str(kwh).strip()
    match = _DECIMAL.fullmatch(text)
    whole, frac = (match.group(1), match.group(2) or "") if match else ("", "")
    if not match or len(frac) > 3:
        raise ValidationError(f"{kwh!r} is not a kWh amount with at most 3 decimals")
    sign = -1 if whole.startswith("-") else 1
    return WattHours(sign * (abs(int(whole)) * 1000 + int((frac + "000")[:3])))


def energy_between(start_wh: int | None, stop_wh: int | None) -> int | None:
    """Energy between two register readings, unknown if either is."""
    if start_wh is None or stop_wh is None:
        return None
    return stop_wh - start_wh


@dataclass(frozen=True, order=True)
class Money:
    """An amount in integer minor units of an ISO 4217 currency."""

    currency: str
    minor: int

    def __post_init__(self) -> None:
        if self.currency not in MINOR_UNITS:
            raise ValidationError(f"unsupported currency {self.currency!r} (ISO 4217 code)")
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise ValidationError("money is an integer number of minor units")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.minor + other.minor)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.minor - other.minor)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValidationError(f"cannot combine {self.currency} with {other.currency}")

    @classmethod
    def parse(cls, text: str) -> Money:
        """'12.34 EUR' -> Money('EUR', 1234); refuses more decimals than the currency has."""
        if not isinstance(text, str):
            raise ValidationError(f"{text!r} is not money text such as '12.34 EUR'")
        amount, _, currency = text.strip().partition(" ")
        currency = currency.strip().upper()
        if currency not in MINOR_UNITS:
            raise ValidationError(f"unsupported currency {currency!r} in {text!r}")
        digits = MINOR_UNITS[currency]
        match = _DECIMAL.fullmatch(amount)
        whole, frac = (match.group(1), match.group(2) or "") if match else ("", "")
        if not match or len(frac) > digits:
            raise ValidationError(f"{text!r} is not an amount with at most {digits} decimals")
        sign = -1 if whole.startswith("-") else 1
        scale = 10**digits
        return cls(
            currency,
            sign * (abs(int(whole)) * scale + int((frac or "0").ljust(digits, "0")[:digits] or 0)),
        )

    def __str__(self) -> str:
        digits = MINOR_UNITS[self.currency]
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10**digits)
        return (
            f"{sign}{whole}.{frac:0{digits}d} {self.currency}"
            if digits
            else f"{sign}{whole} {self.currency}"
        )
