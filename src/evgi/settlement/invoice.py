"""The driver's invoice for one session, rendered from its CDR alone.

Everything on the invoice comes from the CDR whose digest the escrow settled on, so the invoice
can always be re-rendered and checked against the ledger; its footer says how.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from evgi.core.units import Money
from evgi.settlement.anchoring import SessionProof
from evgi.settlement.cdr import Cdr

_UNITS = {"ENERGY": "kWh", "TIME": "h", "PARKING_TIME": "h", "FLAT": "session"}
_PER_UNIT = {"ENERGY": Decimal(1000), "TIME": Decimal(3600), "PARKING_TIME": Decimal(3600)}


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    start: datetime
    quantity: str
    unit_price: str  # excl. VAT, per unit
    vat: str
    amount_excl_vat: Money
    amount_incl_vat: Money


@dataclass(frozen=True)
class VatLine:
    """The net amount of the lines taxed at `rate`."""

    rate: str
    basis: Money


@dataclass(frozen=True)
class Invoice:
    cdr: Cdr
    digest: str
    lines: tuple[InvoiceLine, ...]
    vat: tuple[VatLine, ...]
    total_excl_vat: Money
    total_incl_vat: Money
    proof: SessionProof | None

    @property
    def vat_total(self) -> Money:
        """From the totals, not the lines: the totals are what is owed, each rounded once."""
        return self.total_incl_vat - self.total_excl_vat

    @property
    def number(self) -> str:
        """Stable per CDR: the digest's first 12 hex digits."""
        return "INV-" + self.digest[2:14].upper()

    @property
    def energy_kwh(self) -> str:
        return _quantity(Decimal(self.cdr.energy_wh) / 1000)

    def html(self) -> str:
        env = Environment(
            loader=PackageLoader("evgi.settlement", "templates"),
            autoescape=select_autoescape(["html", "j2"]),
        )
        return env.get_template("invoice.html.j2").render(invoice=self)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html())
        return path


def _quantity(value: Decimal) -> str:
    text = format(value.quantize(Decimal("0.001")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _line(cdr: Cdr, line: dict[str, object]) -> InvoiceLine:
    dimension = str(line["dimension"])
    volume = Decimal(str(line["volume"]))
    quantity = volume / _PER_UNIT[dimension] if dimension in _PER_UNIT else volume
    description = dimension.replace("_", " ").lower()
    if line["reservation"]:
        description = f"reservation {description}"
    vat = line["vat"]
    return InvoiceLine(
        description=description,
        start=datetime.fromisoformat(str(line["start"])),
        quantity=f"{_quantity(quantity)} {_UNITS[dimension]}",
        unit_price=f"{line['price']} {cdr.currency}/{_UNITS[dimension]}",
        vat="none" if vat is None else f"{vat} %",
        amount_excl_vat=Money(cdr.currency, int(str(line["amount_excl_vat"]))),
        amount_incl_vat=Money(cdr.currency, int(str(line["amount_incl_vat"]))),
    )


def build_invoice(cdr: Cdr, proof: SessionProof | None = None) -> Invoice:
    """The invoice of `cdr`; with the session's proof its anchoring is printed too."""
    lines = tuple(_line(cdr, line) for line in cdr.cost["lines"])
    rates: dict[str, int] = {}
    for line in lines:
        if line.vat != "none":
            rates[line.vat] = rates.get(line.vat, 0) + line.amount_excl_vat.minor
    return Invoice(
        cdr=cdr,
        digest=cdr.digest(),
        lines=lines,
        vat=tuple(VatLine(rate, Money(cdr.currency, minor)) for rate, minor in rates.items()),
        total_excl_vat=Money(cdr.currency, int(cdr.cost["total_excl_vat"])),
        total_incl_vat=Money(cdr.currency, cdr.total_minor),
        proof=proof,
    )
