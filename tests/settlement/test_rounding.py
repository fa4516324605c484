"""The one rounding step of a cost, in integer arithmetic, against its definition on fractions."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from evgi.core.units import Money
from evgi.settlement.session_cost import _money, _volume

fractions = st.fractions(max_denominator=10**12).filter(lambda f: abs(f) < 10**9)


@given(fractions)
def test_money_rounds_half_away_from_zero(amount: Fraction) -> None:
    scaled = amount * 100
    whole = math.floor(abs(scaled) + Fraction(1, 2))
    assert _money("EUR", amount) == Money("EUR", whole if scaled >= 0 else -whole)


@given(fractions)
def test_volume_rounds_half_up_to_thousandths(value: Fraction) -> None:
    assert _volume(value) * 1000 == math.floor(value * 1000 + Fraction(1, 2))


def test_ties() -> None:
    assert _money("EUR", Fraction(5, 1000)) == Money("EUR", 1)
    assert _money("EUR", Fraction(-5, 1000)) == Money("EUR", -1)
    assert _money("JPY", Fraction(5, 2)) == Money("JPY", 3)
    assert str(_volume(Fraction(1, 2000))) == "0.001"
    assert str(_volume(Fraction(-1, 2000))) == "0.000"
