"""Charge Detail Records: what a settled session delivered and cost, fixed by one digest.

The CDR is the "delivery" side of delivery versus payment: its Keccak-256 digest (over RFC 8785
canonical JSON) is the escrow's record hash, and CDRs are anchored in Merkle batches, so a party
holding a CDR can later prove to anyone with ledger read access that it is the one settled.

Personal data stays off the ledger and out of the CDR: the driver's id token appears only as a
digest, which lets the token's holder show that a session was theirs without revealing it.
Meter values are copied as the CSMS stored them, each value as the shortest decimal string that
reads back as the stored number (the figure the station sent, with no binary float in a hashed
document); signed meter data is kept byte for byte, since the meter's signature covers those
bytes, and OCMF documents are lifted out for readers.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from evgi.core.canonical import canonical_json, parse_json
from evgi.core.digest import keccak256, to_hex
from evgi.core.errors import ValidationError
from evgi.core.units import Money
from evgi.settlement.session_cost import CostBreakdown
from evgi.storage.charging import ChargingTransaction, StoredMeterSample

CDR_VERSION = 1
_TOKEN_DOMAIN = b"evgi id token\x00"
_EXACT_INTEGER = 2**53  # integral doubles below this are exactly their int


def session_id_of(station_id: str, transaction_id: str) -> str:
    """A session's platform-wide id: transaction ids are only unique per station, and a station
    id never contains '/' (it is a path segment of the OCPP URL)."""
    return f"{station_id}/{transaction_id}"


def id_token_digest(id_token: str) -> str:
    """Domain-separated Keccak-256 of an id token: a pseudonym, never the token itself."""
    return to_hex(keccak256(_TOKEN_DOMAIN + id_token.encode()))


def _time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("CDR times must be timezone-aware (UTC)")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: Any, name: str) -> datetime:
    if not isinstance(text, str):
        raise ValidationError(f"CDR field {name} must be an ISO 8601 time")
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"CDR field {name} is not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise ValidationError(f"CDR field {name} has no time zone")
    return value.astimezone(UTC)


def _ocmf(signed: str) -> str | None:
    """The OCMF document inside signed meter data: sent as is (1.6 SignedData) or, in OCPP 2.x,
    as base64 `signedMeterData` of a SignedMeterValue whose encodingMethod is OCMF."""
    if signed.startswith("OCMF|"):
        return signed
    if not signed.startswith("{"):
        return None
    try:
        document = parse_json(signed)
    except ValidationError:
        return None
    if not isinstance(document, dict) or document.get("encodingMethod") != "OCMF":
        return None
    data = document.get("signedMeterData")
    if not isinstance(data, str):
        return None
    if data.startswith("OCMF|"):
        return data
    try:
        text = base64.b64decode(data, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return text if text.startswith("OCMF|") else None


def meter_reading(value: float | None) -> str | None:
    """A stored reading as the shortest decimal that reads back as it (what the station sent):
    exact, and free of float formatting in the canonical JSON. NaN and infinities are None."""
    if value is None or not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < _EXACT_INTEGER:
        return str(int(value))
    return format(Decimal(repr(value)).normalize(), "f")  # "1e+22" -> "1E+22" -> digits


def meter_value_json(stored: StoredMeterSample) -> dict[str, Any]:
    sample = stored.sample
    document: dict[str, Any] = {
        "timestamp": _time(sample.timestamp),
        "evse_id": stored.evse_id,
        "measurand": sample.measurand,
        "value": meter_reading(sample.value),
        "unit": sample.unit,
        "multiplier": sample.multiplier,
        "phase": sample.phase,
        "context": sample.context,
        "location": sample.location,
        "signed": sample.signed,
    }
    ocmf = None if sample.signed is None else _ocmf(sample.signed)
    if ocmf is not None:
        document["ocmf"] = ocmf
    return document


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def cost_json(cost: CostBreakdown) -> dict[str, Any]:
    """The breakdown with money as integer minor units and quantities as decimal strings."""

    def minor(money: Money) -> int:
        if money.currency != cost.currency:
            raise ValidationError(f"cost line in {money.currency}, breakdown in {cost.currency}")
        return money.minor

    return {
        "tariff_id": cost.tariff_id,
        "currency": cost.currency,
        "lines": [
            {
                "dimension": line.dimension.value,
                "reservation": line.reservation,
                "element_index": line.element_index,
                "start": _time(line.start),
                "volume": _decimal(line.volume),
                "price": _decimal(line.price),
                "vat": _decimal(line.vat),
                "amount_excl_vat": minor(line.amount_excl_vat),
                "amount_incl_vat": minor(line.amount_incl_vat),
            }
            for line in cost.lines
        ],
        "dimensions": [
            {
                "dimension": d.dimension.value,
                "reservation": d.reservation,
                "volume": _decimal(d.volume),
                "amount_excl_vat": minor(d.amount_excl_vat),
                "amount_incl_vat": minor(d.amount_incl_vat),
            }
            for d in cost.dimensions
        ],
        "total_excl_vat": minor(cost.total_excl_vat),
        "total_incl_vat": minor(cost.total_incl_vat),
        "price_limit": None if cost.price_limit is None else cost.price_limit.value,
    }


@dataclass(frozen=True)
class Cdr:
    """One session's record. `total_minor` (incl. VAT) is what the driver owes; `cost` is the
    breakdown from `cost_json`; `meter_values` are `meter_value_json` documents."""

    session_id: str
    station_id: str
    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    id_token_digest: str | None
    driver: str
    cpo: str
    emsp: str
    currency: str
    start: datetime
    stop: datetime
    meter_start_wh: int
    meter_stop_wh: int
    meter_values: tuple[dict[str, Any], ...]
    tariff_digest: str
    cost: dict[str, Any]
    total_minor: int
    escrow_id: str | None

    @property
    def energy_wh(self) -> int:
        return self.meter_stop_wh - self.meter_start_wh

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CDR_VERSION,
            "session_id": self.session_id,
            "station_id": self.station_id,
            "transaction_id": self.transaction_id,
            "evse_id": self.evse_id,
            "connector_id": self.connector_id,
            "id_token_digest": self.id_token_digest,
            "driver": self.driver,
            "cpo": self.cpo,
            "emsp": self.emsp,
            "currency": self.currency,
            "start": _time(self.start),
            "stop": _time(self.stop),
            "meter_start_wh": self.meter_start_wh,
            "meter_stop_wh": self.meter_stop_wh,
            "energy_wh": self.energy_wh,
            "meter_values": list(self.meter_values),
            "tariff_digest": self.tariff_digest,
            "cost": self.cost,
            "total_minor": self.total_minor,
            "escrow_id": self.escrow_id,
        }

    @cached_property
    def canonical(self) -> bytes:
        """The RFC 8785 bytes the digest covers and the store keeps, computed once."""
        return canonical_json(self.to_json())

    @cached_property
    def _digest(self) -> str:
        return to_hex(keccak256(self.canonical))

    def digest(self) -> str:
        """0x-hex Keccak-256 of `canonical`: the escrow's record hash, computed once."""
        return self._digest

    @classmethod
    def from_json(cls, data: Any) -> Cdr:
        """Parse a CDR document; its digest is that of `data` only if nothing was altered."""
        if not isinstance(data, dict):
            raise ValidationError("a CDR is a JSON object")
        if data.get("version") != CDR_VERSION:
            raise ValidationError(f"unsupported CDR version {data.get('version')!r}")
        try:
            cdr = cls(
                session_id=str(data["session_id"]),
                station_id=str(data["station_id"]),
                transaction_id=str(data["transaction_id"]),
                evse_id=data["evse_id"],
                connector_id=data["connector_id"],
                id_token_digest=data["id_token_digest"],
                driver=str(data["driver"]),
                cpo=str(data["cpo"]),
                emsp=str(data["emsp"]),
                currency=str(data["currency"]),
                start=_parse_time(data["start"], "start"),
                stop=_parse_time(data["stop"], "stop"),
                meter_start_wh=int(data["meter_start_wh"]),
                meter_stop_wh=int(data["meter_stop_wh"]),
                meter_values=tuple(data["meter_values"]),
                tariff_digest=str(data["tariff_digest"]),
                cost=dict(data["cost"]),
                total_minor=int(data["total_minor"]),
                escrow_id=data["escrow_id"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"malformed CDR: {exc!r}") from exc
        if data.get("energy_wh") != cdr.energy_wh:
            raise ValidationError("CDR energy_wh is not meter_stop_wh - meter_start_wh")
        return cdr


def cdr_digest(document: Any) -> str:
    """0x-hex Keccak-256 of a CDR document's canonical JSON: the escrow's record hash and the
    Merkle leaf of its batch."""
    return to_hex(keccak256(canonical_json(document)))


def build_cdr(
    transaction: ChargingTransaction,
    meter_values: list[StoredMeterSample],
    cost: CostBreakdown,
    tariff_digest: str,
    driver: str,
    cpo: str,
    emsp: str,
    escrow_id: str | None = None,
) -> Cdr:
    """The CDR of an ended transaction, from the CSMS's stored rows and the session's price.

    `meter_values` are the transaction's stored samples (`ChargingStore.meter_samples(conn,
    transaction_number=transaction.number)`); `cost` is `price_session` on the locked tariff
    whose digest is `tariff_digest`.
    """
    if transaction.stopped_at is None or transaction.state != "ended":
        raise ValidationError(
            f"transaction {transaction.transaction_id} of {transaction.station_id} has not ended"
        )
    if transaction.meter_start_wh is None or transaction.meter_stop_wh is None:
        raise ValidationError(
            f"transaction {transaction.transaction_id} has no meter start or stop reading"
        )
    if transaction.meter_stop_wh < transaction.meter_start_wh:
        raise ValidationError(
            f"transaction {transaction.transaction_id}: meter stop {transaction.meter_stop_wh} Wh"
            f" is below meter start {transaction.meter_start_wh} Wh"
        )
    foreign = [s for s in meter_values if s.transaction_number != transaction.number]
    if foreign:
        raise ValidationError(
            f"meter values of transaction number {foreign[0].transaction_number} given for"
            f" transaction number {transaction.number}"
        )
    costs = cost_json(cost)
    return Cdr(
        session_id=session_id_of(transaction.station_id, transaction.transaction_id),
        station_id=transaction.station_id,
        transaction_id=transaction.transaction_id,
        evse_id=transaction.evse_id,
        connector_id=transaction.connector_id,
        id_token_digest=None
        if transaction.id_token is None
        else id_token_digest(transaction.id_token),
        driver=driver,
        cpo=cpo,
        emsp=emsp,
        currency=cost.currency,
        start=transaction.started_at,
        stop=transaction.stopped_at,
        meter_start_wh=transaction.meter_start_wh,
        meter_stop_wh=transaction.meter_stop_wh,
        meter_values=tuple(meter_value_json(s) for s in meter_values),
        tariff_digest=tariff_digest,
        cost=costs,
        total_minor=costs["total_incl_vat"],
        escrow_id=escrow_id,
    )
