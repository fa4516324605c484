"""Kernel: keys, signatures, canonical JSON, identifiers, units, errors, events, clocks."""

from evgi.core.canonical import canonical_json, compact_json, parse_json
from evgi.core.clock import Clock, SimulatedClock, SystemClock, from_unix, unix_seconds
from evgi.core.digest import from_hex, keccak256, sha256, to_hex
from evgi.core.errors import (
    ConfigError,
    EvgiError,
    ExecutionError,
    IntegrityError,
    NonceError,
    NotFoundError,
    PermissionDenied,
    SignatureError,
    ValidationError,
)
from evgi.core.events import EventBus
from evgi.core.identifiers import (
    EntityKind,
    emaid_check_digit,
    make_eid,
    validate_eid,
    validate_emaid,
    validate_evse_id,
    validate_pcid,
    validate_vin,
    vin_check_digit,
)
from evgi.core.keys import (
    Account,
    checksum_address,
    normalize_address,
    public_key_to_address,
    recover_address,
    verify_digest,
)
from evgi.core.merkle import MerkleProof, merkle_proof, merkle_root, verify_merkle_proof
from evgi.core.units import MINOR_UNITS, Money, WattHours, Watts, kwh_to_wh

__all__ = [
    "MINOR_UNITS",
    "Account",
    "Clock",
    "ConfigError",
    "EntityKind",
    "EventBus",
    "EvgiError",
    "ExecutionError",
    "IntegrityError",
    "MerkleProof",
    "Money",
    "NonceError",
    "NotFoundError",
    "PermissionDenied",
    "SignatureError",
    "SimulatedClock",
    "SystemClock",
    "ValidationError",
    "WattHours",
    "Watts",
    "canonical_json",
    "checksum_address",
    "compact_json",
    "emaid_check_digit",
    "from_hex",
    "from_unix",
    "keccak256",
    "kwh_to_wh",
    "make_eid",
    "merkle_proof",
    "merkle_root",
    "normalize_address",
    "parse_json",
    "public_key_to_address",
    "recover_address",
    "sha256",
    "to_hex",
    "unix_seconds",
    "validate_eid",
    "validate_emaid",
    "validate_evse_id",
    "validate_pcid",
    "validate_vin",
    "verify_digest",
    "verify_merkle_proof",
    "vin_check_digit",
]
