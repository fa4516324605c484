"""Money and energy as exact integers: parsing must never round, and floats are turned away."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evgi.core import MINOR_UNITS, Money, ValidationError, kwh_to_wh


@pytest.mark.parametrize(
    ("text", "money"),
    [
        ("12.34 EUR", Money("EUR", 1234)),
        ("12.3 EUR", Money("EUR", 1230)),
        ("12 EUR", Money("EUR", 1200)),
        ("0.01 usd", Money("USD", 1)),
        ("-0.05 EUR", Money("EUR", -5)),
        ("-3.5 GBP", Money("GBP", -350)),
        ("1500 JPY", Money("JPY", 1500)),
        ("1.234 KWD", Money("KWD", 1234)),
        ("  7.00 CHF ", Money("CHF", 700)),
        ("90071992547409.93 EUR", Money("EUR", 9007199254740993)),  # beyond a double's precision
    ],
)
def test_money_parse(text: str, money: Money) -> None:
    assert Money.parse(text) == money


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money("EUR", 1234), "12.34 EUR"),
        (Money("EUR", 5), "0.05 EUR"),
        (Money("EUR", -5), "-0.05 EUR"),
        (Money("EUR", 0), "0.00 EUR"),
        (Money("JPY", 1500), "1500 JPY"),
        (Money("BHD", 1001), "1.001 BHD"),
    ],
)
def test_money_format(money: Money, text: str) -> None:
    assert str(money) == text
    assert Money.parse(text) == money


@given(st.sampled_from(sorted(MINOR_UNITS)), st.integers(min_value=-(10**20), max_value=10**20))
def test_money_format_parse_round_trip(currency: str, minor: int) -> None:
    money = Money(currency, minor)
    assert Money.parse(str(money)) == money


@pytest.mark.parametrize(
    "text",
    [
        "12.345 EUR",  # more decimals than the euro has
        "12.5 JPY",  # the yen has none
        "1.2345 KWD",
        "12,34 EUR",
        "1e3 EUR",
        "--1 EUR",
        "+1 EUR",
        ".5 EUR",
        "\u0661\u0662 EUR",  # Arabic-Indic digits pass str.isdigit()
        "\u00b2 EUR",  # so does a superscript two
        "12.34 XXX",
        "12.34",
        "EUR 12.34",
        "",
    ],
)
def test_money_parse_refuses(text: str) -> None:
    with pytest.raises(ValidationError):
        Money.parse(text)


def test_money_refuses_floats_and_unknown_currencies() -> None:
    for amount in (12.5, 12.0, True):
        with pytest.raises(ValidationError, match="integer"):
            Money("EUR", amount)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Money.parse(12.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="currency"):
        Money("eur", 100)
    with pytest.raises(ValidationError, match="currency"):
        Money("XYZ", 100)


def test_money_arithmetic_stays_in_one_currency() -> None:
    assert Money("EUR", 150) + Money("EUR", 250) == Money("EUR", 400)
    assert Money("EUR", 150) - Money("EUR", 250) == Money("EUR", -100)
    with pytest.raises(ValidationError, match="cannot combine"):
        Money("EUR", 1) + Money("USD", 1)
    with pytest.raises(ValidationError, match="cannot combine"):
        Money("EUR", 1) - Money("USD", 1)


@pytest.mark.parametrize(
    ("kwh", "wh"),
    [
        ("12.345", 12345),
        ("0.001", 1),
        ("0.1", 100),
        ("7", 7000),
        (7, 7000),
        ("-1.5", -1500),
        ("-0.5", -500),
        (" 3.25 ", 3250),
        ("123456789012345.678", 123456789012345678),  # exact where a float would round
    ],
)
def test_kwh_to_wh_is_exact(kwh: str | int, wh: int) -> None:
    assert kwh_to_wh(kwh) == wh


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_kwh_to_wh_inverts_formatting(wh: int) -> None:
    sign = "-" if wh < 0 else ""
    whole, frac = divmod(abs(wh), 1000)
    assert kwh_to_wh(f"{sign}{whole}.{frac:03d}") == wh


@pytest.mark.parametrize(
    "kwh", ["1.2345", "1,5", "abc", "", "--1", "1e3", "\u0661\u0662", "\u00b2", 1.5, True]
)
def test_kwh_to_wh_refuses(kwh: object) -> None:
    with pytest.raises(ValidationError):
        kwh_to_wh(kwh)  # type: ignore[arg-type]
