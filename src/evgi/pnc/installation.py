"""Contract certificate installation: the contract key encrypted for one vehicle, and the signed
CertificateInstallationRes that carries it.

Three key profiles, chosen by the key of the vehicle's OEM provisioning certificate:

- ISO 15118-2 [V2G2-818]: ephemeral ECDH on secp256r1 with the provisioning key, the
  concatenation KDF of NIST SP 800-56A (SHA-256, AlgorithmID 0x01, PartyUInfo "U" (0x55),
  PartyVInfo "V" (0x56), 128-bit key), AES-128-CBC over the 32-byte private scalar with a
  random 16-byte IV prepended (no padding: the scalar is two blocks).
- ISO 15118-20 on secp521r1 [V2G20-2497..2499]: ephemeral ECDH on secp521r1, the same KDF with
  SHA-512 and a 256-bit key, AES-256-GCM over the 66-byte scalar (521 bits padded to 528) with
  the AAD of [V2G20-2492] (the 18-character PCID, then the contract certificate's SKI as
  upper-case hex); the field is IV (12 bytes) || ciphertext (66) || tag (16).
- ISO 15118-20 on Ed448 [V2G20-2500..2502]: the key agreement runs on X448. The vehicle's X448
  key is derived from its Ed448 provisioning key ([V2G20-2491]: ECDHE parameters derived from
  the EdDSA parameters): the public key through the 4-isogeny of RFC 7748 section 4.2 that maps
  edwards448 onto curve448, the private key as the first 56 bytes of SHAKE256 of the Ed448 seed
  (the scalar Ed448 itself uses). KDF and AES-256-GCM as for secp521r1; the 448-bit contract
  key is the RFC 8032 seed, whose 57th byte is zero so that its 448 bits fit the 56-byte field:
  IV (12) || ciphertext (56) || tag (16).

A contract renewed under -2 reaches a vehicle holding its predecessor as a CertificateUpdateRes:
the same ECDH, KDF and cipher, against the key of the contract it replaces ([V2G2-818]), and
asked for by a CertificateUpdateReq signed with that key. ISO 15118-20 has no update.

The secondary actor's signature (the CPS leaf's) covers the contract chain, the encrypted key,
the DH public key and the eMAID. ISO 15118 signs their EXI encoding; no maintained Python EXI
codec for the ISO 15118 schemas runs without a Java runtime, so the signature covers the
RFC 8785 canonical JSON of those four elements (DER and keys in base64), signed with
ECDSA-SHA256 (P-256), ECDSA-SHA512 (P-521) or Ed448, as the CPS key's profile prescribes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

from evgi.core.canonical import canonical_json
from evgi.core.errors import SignatureError, ValidationError
from evgi.core.identifiers import validate_emaid, validate_pcid
from evgi.pnc.authority import CertificateError, common_name, load_certificate
from evgi.pnc.hierarchy import LeafRole
from evgi.pnc.ocsp import verify_signature
from evgi.pnc.validation import ChainValidator

ContractKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
SigningKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
VerifyingKey = ec.EllipticCurvePublicKey | ed448.Ed448PublicKey

# SP 800-56A OtherInfo of [V2G2-818]: AlgorithmID 0x01, PartyUInfo "U", PartyVInfo "V".
_OTHER_INFO = b"\x01UV"
_GCM_IV = 12
_GCM_TAG = 16
_CBC_IV = 16
# edwards448 (RFC 7748 section 4.2): p = 2^448 - 2^224 - 1, d = -39081.
_P448 = 2**448 - 2**224 - 1
_D448 = -39081 % _P448
_ED448_SEED = 57
_X448_KEY = 56


class InstallationError(ValidationError):
    """Contract data that cannot be built, decrypted or trusted; the message says which part."""

    code = "bad_installation"


class MalformedIdentifier(InstallationError):
    """A PCID or eMAID that does not have the form ISO 15118 gives it."""

    code = "malformed_identifier"


class KeyProfile(StrEnum):
    """The three ways ISO 15118 protects a contract key on its way to the vehicle."""

    ISO15118_2 = "iso15118-2"
    ISO15118_20_SECP521R1 = "iso15118-20-secp521r1"
    ISO15118_20_ED448 = "iso15118-20-ed448"

    @property
    def key_algorithm(self) -> str:
        """The name the PKI's authorities give this profile's keys."""
        return {
            "iso15118-2": "secp256r1",
            "iso15118-20-secp521r1": "secp521r1",
            "iso15118-20-ed448": "ed448",
        }[self]

    @property
    def ecdsa_hash(self) -> hashes.HashAlgorithm:
        """ECDSA-SHA256 on -2's P-256, ECDSA-SHA512 on -20's P-521."""
        return hashes.SHA512() if self is KeyProfile.ISO15118_20_SECP521R1 else hashes.SHA256()

    @property
    def scalar_length(self) -> int:
        return {"iso15118-2": 32, "iso15118-20-secp521r1": 66, "iso15118-20-ed448": 56}[self]

    @property
    def encrypted_length(self) -> int:
        if self is KeyProfile.ISO15118_2:
            return _CBC_IV + self.scalar_length
        return _GCM_IV + self.scalar_length + _GCM_TAG

    @property
    def dh_public_length(self) -> int:
        return {"iso15118-2": 65, "iso15118-20-secp521r1": 133, "iso15118-20-ed448": 56}[self]


def key_profile(public_key: object) -> KeyProfile:
    """The profile of a provisioning or contract key; other keys have no place in ISO 15118."""
    if isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if public_key.curve.name == "secp256r1":
            return KeyProfile.ISO15118_2
        if public_key.curve.name == "secp521r1":
            return KeyProfile.ISO15118_20_SECP521R1
        raise InstallationError(
            f"an EC key on {public_key.curve.name} fits no ISO 15118 profile "
            "(secp256r1 for -2, secp521r1 for -20)"
        )
    if isinstance(public_key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return KeyProfile.ISO15118_20_ED448
    raise InstallationError(
        f"a {type(public_key).__name__} fits no ISO 15118 profile (secp256r1, secp521r1, Ed448)"
    )


def generate_contract_key(profile: KeyProfile) -> ContractKey:
    """A new contract key of `profile`; an Ed448 seed ends in a zero byte (see the module)."""
    if profile is KeyProfile.ISO15118_2:
        return ec.generate_private_key(ec.SECP256R1())
    if profile is KeyProfile.ISO15118_20_SECP521R1:
        return ec.generate_private_key(ec.SECP521R1())
    return ed448.Ed448PrivateKey.from_private_bytes(os.urandom(_X448_KEY) + b"\x00")


@dataclass(frozen=True)
class EncryptedContractKey:
    """ContractSignatureEncryptedPrivateKey and DHpublickey of a CertificateInstallationRes."""

    profile: KeyProfile
    encrypted_private_key: bytes
    dh_public_key: bytes


def seal_contract_key(
    contract_key: ContractKey,
    contract_certificate: x509.Certificate,
    provisioning_certificate: x509.Certificate,
) -> EncryptedContractKey:
    """Encrypt the contract key for the vehicle whose provisioning certificate is given.

    The contract key must belong to the contract certificate and share the provisioning key's
    profile: a vehicle speaks one profile for both.
    """
    pcid = provisioning_pcid(provisioning_certificate)
    return _seal(contract_key, contract_certificate, provisioning_certificate.public_key(), pcid)


def seal_contract_update(
    contract_key: ContractKey,
    contract_certificate: x509.Certificate,
    current_contract: x509.Certificate,
) -> EncryptedContractKey:
    """Encrypt a renewed contract's key for the vehicle holding `current_contract`: [V2G2-818]
    agrees the key of a CertificateUpdateRes with the key of the contract it replaces. ISO
    15118-2 only: -20 has no CertificateUpdate (a -20 vehicle installs its new contract)."""
    if key_profile(current_contract.public_key()) is not KeyProfile.ISO15118_2:
        raise InstallationError(
            "only ISO 15118-2 updates a contract (CertificateUpdateReq); under -20 the vehicle "
            "installs the new one"
        )
    return _seal(contract_key, contract_certificate, current_contract.public_key(), None)


def _seal(
    contract_key: ContractKey,
    contract_certificate: x509.Certificate,
    recipient: object,
    pcid: str | None,
) -> EncryptedContractKey:
    """ECDH with the recipient's static key (a provisioning key, or the contract key being
    replaced), then the profile's KDF and cipher; `pcid` feeds -20's AAD."""
    profile = key_profile(recipient)
    if key_profile(contract_key) is not profile:
        raise InstallationError(
            f"the contract key is {key_profile(contract_key)}, the vehicle's key "
            f"{profile}: both must share one profile"
        )
    if contract_certificate.public_key() != contract_key.public_key():
        raise InstallationError("the contract key does not belong to the contract certificate")
    plain = _private_scalar(contract_key)
    if isinstance(recipient, ed448.Ed448PublicKey):
        ephemeral_x = x448.X448PrivateKey.generate()
        secret = ephemeral_x.exchange(_x448_public(recipient))
        dh_public = ephemeral_x.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        assert isinstance(recipient, ec.EllipticCurvePublicKey)  # key_profile checked it
        ephemeral = ec.generate_private_key(recipient.curve)
        secret = ephemeral.exchange(ec.ECDH(), recipient)
        dh_public = ephemeral.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    session_key = _session_key(profile, secret)
    if profile is KeyProfile.ISO15118_2:
        iv = os.urandom(_CBC_IV)
        encryptor = Cipher(algorithms.AES(session_key), modes.CBC(iv)).encryptor()
        encrypted = iv + encryptor.update(plain) + encryptor.finalize()
    else:
        assert pcid is not None  # seal_contract_update takes -2 keys only
        iv = os.urandom(_GCM_IV)
        encrypted = iv + AESGCM(session_key).encrypt(iv, plain, _aad(pcid, contract_certificate))
    return EncryptedContractKey(profile, encrypted, dh_public)


def open_contract_key(
    sealed: EncryptedContractKey,
    provisioning_key: ContractKey,
    contract_certificate: x509.Certificate,
    pcid: str,
) -> ContractKey:
    """The vehicle's side: decrypt with its provisioning key, and refuse a key that does not
    belong to the contract certificate (the only check -2's unauthenticated CBC allows)."""
    return _open(sealed, provisioning_key, contract_certificate, pcid)


def _open(
    sealed: EncryptedContractKey,
    recipient_key: ContractKey,
    contract_certificate: x509.Certificate,
    pcid: str | None,
) -> ContractKey:
    """Decrypt with the key the contract was sealed for (`_seal`); `pcid` feeds -20's AAD."""
    profile = key_profile(recipient_key)
    if sealed.profile is not profile:
        raise InstallationError(
            f"the contract key was sealed for {sealed.profile}; this vehicle's key is {profile}"
        )
    if len(sealed.encrypted_private_key) != profile.encrypted_length:
        raise InstallationError(
            f"the encrypted private key has {len(sealed.encrypted_private_key)} bytes; "
            f"{profile} carries {profile.encrypted_length}"
        )
    if len(sealed.dh_public_key) != profile.dh_public_length:
        raise InstallationError(
            f"the DH public key has {len(sealed.dh_public_key)} bytes; "
            f"{profile} carries {profile.dh_public_length}"
        )
    try:
        if isinstance(recipient_key, ed448.Ed448PrivateKey):
            peer_x = x448.X448PublicKey.from_public_bytes(sealed.dh_public_key)
            secret = _x448_private(recipient_key).exchange(peer_x)
        else:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(
                recipient_key.curve, sealed.dh_public_key
            )
            secret = recipient_key.exchange(ec.ECDH(), peer)
    except ValueError as exc:
        raise InstallationError(f"the DH public key is not a point of {profile}: {exc}") from exc
    session_key = _session_key(profile, secret)
    data = sealed.encrypted_private_key
    if profile is KeyProfile.ISO15118_2:
        decryptor = Cipher(algorithms.AES(session_key), modes.CBC(data[:_CBC_IV])).decryptor()
        plain = decryptor.update(data[_CBC_IV:]) + decryptor.finalize()
    else:
        if pcid is None:
            raise InstallationError(f"a {profile} contract is installed, never updated")
        try:
            plain = AESGCM(session_key).decrypt(
                data[:_GCM_IV], data[_GCM_IV:], _aad(checked_pcid(pcid), contract_certificate)
            )
        except InvalidTag as exc:
            raise InstallationError(
                "the encrypted private key fails its AES-GCM tag: altered, or not sealed for "
                "this vehicle and contract"
            ) from exc
    key = _contract_key(profile, plain)
    if key is None or key.public_key() != contract_certificate.public_key():
        raise InstallationError(
            "the decrypted key does not belong to the contract certificate: the data was "
            "altered or sealed for another vehicle"
        )
    return key


def provisioning_pcid(certificate: x509.Certificate) -> str:
    """The PCID a provisioning certificate names as its CN."""
    named = common_name(certificate.subject)
    if named is None:
        raise InstallationError("the provisioning certificate names no single CN (its PCID)")
    return checked_pcid(named)


def checked_pcid(pcid: str) -> str:
    """A PCID as ISO 15118 carries it; refused as InstallationError."""
    try:
        return validate_pcid(pcid)
    except ValidationError as exc:
        raise MalformedIdentifier(exc.message) from exc


def contract_emaid(certificate: x509.Certificate) -> str:
    """The eMAID a contract certificate names as its CN, checked (check digit when present)."""
    named = common_name(certificate.subject)
    if named is None:
        raise InstallationError("the contract certificate names no single CN (its eMAID)")
    return checked_emaid(named)


def checked_emaid(emaid: str) -> str:
    """An eMAID as ISO 15118 carries it, without separators; refused as InstallationError."""
    try:
        return validate_emaid(emaid)
    except ValidationError as exc:
        raise MalformedIdentifier(exc.message) from exc


def same_contract(emaid: str, other: str) -> bool:
    """Whether two spellings name one contract: separators, case and the check character
    aside, which a vehicle or a station may leave out."""
    return _contract_body(emaid) == _contract_body(other)


def _contract_body(emaid: str) -> str:
    return emaid.replace("-", "").strip().upper()[:14]


@dataclass(frozen=True)
class CertificateInstallationResponse:
    """What the CPS signs and the vehicle installs: the -2 CertificateInstallationRes body."""

    contract_chain: tuple[x509.Certificate, ...]
    sealed_key: EncryptedContractKey
    emaid: str
    sa_chain: tuple[x509.Certificate, ...]
    signature: bytes

    def signed_content(self) -> bytes:
        return _signed_content(self.contract_chain, self.sealed_key, self.emaid)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.sealed_key.profile.value,
            "contractSignatureCertChain": _chain_json(self.contract_chain),
            "contractSignatureEncryptedPrivateKey": _b64(self.sealed_key.encrypted_private_key),
            "dhPublicKey": _b64(self.sealed_key.dh_public_key),
            "emaid": self.emaid,
            "saProvisioningCertificateChain": _chain_json(self.sa_chain),
            "signature": _b64(self.signature),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CertificateInstallationResponse:
        """Parse the JSON form; every field is checked, and a bad one is named."""
        if body.get("profile") not in set(KeyProfile):
            raise InstallationError(
                f"profile must be one of {', '.join(KeyProfile)}, not {body.get('profile')!r}"
            )
        try:
            profile = KeyProfile(body["profile"])
            sealed = EncryptedContractKey(
                profile,
                _unb64(body["contractSignatureEncryptedPrivateKey"]),
                _unb64(body["dhPublicKey"]),
            )
            contract_chain = parse_chain(body["contractSignatureCertChain"])
            sa_chain = parse_chain(body["saProvisioningCertificateChain"])
            emaid = body["emaid"]
            signature = _unb64(body["signature"])
        except KeyError as exc:
            raise InstallationError(f"the installation response lacks {exc.args[0]}") from exc
        except (TypeError, ValueError) as exc:
            raise InstallationError(f"the installation response is malformed: {exc}") from exc
        if not isinstance(emaid, str):
            raise InstallationError("emaid must be a string")
        return cls(contract_chain, sealed, emaid, sa_chain, signature)


def sign_installation(
    contract_chain: Sequence[x509.Certificate],
    sealed_key: EncryptedContractKey,
    sa_key: SigningKey,
    sa_chain: Sequence[x509.Certificate],
) -> CertificateInstallationResponse:
    """The CPS's step: check the contract data and sign it with the CPS leaf key."""
    if not contract_chain or not sa_chain:
        raise InstallationError("both the contract chain and the CPS chain need a leaf")
    if sa_chain[0].public_key() != sa_key.public_key():
        raise InstallationError("the signing key does not belong to the CPS leaf certificate")
    emaid = contract_emaid(contract_chain[0])
    if key_profile(contract_chain[0].public_key()) is not sealed_key.profile:
        raise InstallationError(
            "the contract certificate's key and the sealed key differ in profile"
        )
    content = _signed_content(contract_chain, sealed_key, emaid)
    return CertificateInstallationResponse(
        tuple(contract_chain), sealed_key, emaid, tuple(sa_chain), _sign(sa_key, content)
    )


@dataclass(frozen=True)
class InstalledContract:
    """A contract as the vehicle keeps it: the chain, its key and the eMAID."""

    emaid: str
    chain: tuple[x509.Certificate, ...]
    private_key: ContractKey

    def sign_challenge(self, challenge: bytes) -> bytes:
        """AuthorizationReq's GenChallenge, signed with the contract key (-2 [V2G2-684])."""
        return _sign(self.private_key, challenge)

    def update_request(self) -> CertificateUpdateRequest:
        """CertificateUpdateReq for this contract, signed with its key."""
        content = _update_content(self.chain, self.emaid)
        return CertificateUpdateRequest(self.chain, self.emaid, _sign(self.private_key, content))


@dataclass(frozen=True)
class CertificateUpdateRequest:
    """The -2 CertificateUpdateReq: the vehicle's current contract chain and eMAID, signed with
    the current contract key, so that only the contract's holder asks for its successor (the
    RFC 8785 canonical JSON of both is what is signed, as for the CPS's signature)."""

    contract_chain: tuple[x509.Certificate, ...]
    emaid: str
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "contractSignatureCertChain": _chain_json(self.contract_chain),
            "emaid": self.emaid,
            "signature": _b64(self.signature),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> CertificateUpdateRequest:
        try:
            chain = parse_chain(body["contractSignatureCertChain"])
            emaid = body["emaid"]
            signature = _unb64(body["signature"])
        except KeyError as exc:
            raise InstallationError(f"the update request lacks {exc.args[0]}") from exc
        if not isinstance(emaid, str):
            raise InstallationError("emaid must be a string")
        checked_emaid(emaid)  # kept as sent: the signature covers that spelling
        return cls(chain, emaid, signature)

    def verify(self) -> None:
        """Refuse a request its contract key did not sign."""
        try:
            _verify(
                self.contract_chain[0].public_key(),
                self.signature,
                _update_content(self.contract_chain, self.emaid),
            )
        except SignatureError as exc:
            raise InstallationError(
                f"the update request is not signed with its contract key: {exc.message}"
            ) from exc


def install_contract(
    response: CertificateInstallationResponse,
    provisioning_key: ContractKey,
    pcid: str,
    v2g_roots: Sequence[x509.Certificate],
) -> InstalledContract:
    """The vehicle's side of installation: trust the CPS chain to one of its V2G roots, check
    the signature and the eMAID, decrypt the contract key."""
    emaid = _trusted_emaid(response, v2g_roots)
    key = open_contract_key(response.sealed_key, provisioning_key, response.contract_chain[0], pcid)
    return InstalledContract(emaid, response.contract_chain, key)


def update_contract(
    response: CertificateInstallationResponse,
    current: InstalledContract,
    v2g_roots: Sequence[x509.Certificate],
) -> InstalledContract:
    """The vehicle's side of update (CertificateUpdateRes): checked as an installation, the
    new key decrypted with the current contract's ([V2G2-818])."""
    emaid = _trusted_emaid(response, v2g_roots)
    key = _open(response.sealed_key, current.private_key, response.contract_chain[0], None)
    return InstalledContract(emaid, response.contract_chain, key)


def _trusted_emaid(
    response: CertificateInstallationResponse, v2g_roots: Sequence[x509.Certificate]
) -> str:
    """The eMAID of contract data whose CPS chain ends at one of `v2g_roots`, whose CPS
    signature verifies and whose eMAID is its certificate's."""
    verdict = ChainValidator(v2g_roots).validate(LeafRole.CPS, response.sa_chain)
    if not verdict.accepted:
        raise InstallationError(f"the CPS chain is refused ({verdict.status}): {verdict.message}")
    try:
        _verify(response.sa_chain[0].public_key(), response.signature, response.signed_content())
    except SignatureError as exc:
        raise InstallationError(f"the CPS signature does not verify: {exc.message}") from exc
    emaid = contract_emaid(response.contract_chain[0])
    if checked_emaid(response.emaid) != emaid:
        raise InstallationError(
            f"the response names eMAID {response.emaid}, its contract certificate {emaid}"
        )
    return emaid


def parse_chain(value: Any) -> tuple[x509.Certificate, ...]:
    """A chain sent as base64 DER strings, leaf first (read leniently, as real PKIs encode)."""
    if not isinstance(value, list) or not value:
        raise InstallationError("a certificate chain is a non-empty list of base64 DER strings")
    try:
        return tuple(load_certificate(_unb64(item)).certificate for item in value)
    except CertificateError as exc:
        raise InstallationError(exc.message) from exc


def _signed_content(
    chain: Sequence[x509.Certificate], sealed: EncryptedContractKey, emaid: str
) -> bytes:
    return canonical_json(
        {
            "contractSignatureCertChain": _chain_json(chain),
            "contractSignatureEncryptedPrivateKey": _b64(sealed.encrypted_private_key),
            "dhPublicKey": _b64(sealed.dh_public_key),
            "emaid": emaid,
        }
    )


def _update_content(chain: Sequence[x509.Certificate], emaid: str) -> bytes:
    return canonical_json({"contractSignatureCertChain": _chain_json(chain), "emaid": emaid})


def _session_key(profile: KeyProfile, secret: bytes) -> bytes:
    if profile is KeyProfile.ISO15118_2:
        return ConcatKDFHash(hashes.SHA256(), 16, _OTHER_INFO).derive(secret)
    return ConcatKDFHash(hashes.SHA512(), 32, _OTHER_INFO).derive(secret)


def _aad(pcid: str, contract_certificate: x509.Certificate) -> bytes:
    """[V2G20-2492]: the PCID, then the contract certificate's SKI in upper-case hex."""
    ski = load_certificate(
        contract_certificate.public_bytes(serialization.Encoding.DER)
    ).subject_key_identifier
    if ski is None:
        raise InstallationError("the contract certificate has no subject key identifier")
    return pcid.encode() + ski.hex().upper().encode()


def _private_scalar(key: ContractKey) -> bytes:
    if isinstance(key, ed448.Ed448PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        if seed[_X448_KEY:] != b"\x00":
            raise InstallationError(
                "this Ed448 contract key's seed does not fit 448 bits: make it with "
                "generate_contract_key"
            )
        return seed[:_X448_KEY]
    return key.private_numbers().private_value.to_bytes(key_profile(key).scalar_length, "big")


def _contract_key(profile: KeyProfile, plain: bytes) -> ContractKey | None:
    if profile is KeyProfile.ISO15118_20_ED448:
        return ed448.Ed448PrivateKey.from_private_bytes(plain + b"\x00")
    curve: ec.EllipticCurve = ec.SECP256R1() if profile is KeyProfile.ISO15118_2 else ec.SECP521R1()
    try:
        return ec.derive_private_key(int.from_bytes(plain, "big"), curve)
    except ValueError:
        return None  # a scalar out of range: what decrypting altered CBC data may give


def _x448_public(public_key: object) -> x448.X448PublicKey:
    """The curve448 point of an Ed448 key: u = y^2 (1 - d y^2) / (1 - y^2) (RFC 7748 4.2)."""
    assert isinstance(public_key, ed448.Ed448PublicKey)
    encoded = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    y = int.from_bytes(encoded[:_X448_KEY], "little")
    y2 = y * y % _P448
    if y >= _P448 or y2 == 1 or encoded[_X448_KEY] & 0x7F:
        raise InstallationError("the Ed448 provisioning key is not a valid point")
    u = y2 * (1 - _D448 * y2) * pow(1 - y2, -1, _P448) % _P448
    return x448.X448PublicKey.from_public_bytes(u.to_bytes(_X448_KEY, "little"))


def _x448_private(key: ed448.Ed448PrivateKey) -> x448.X448PrivateKey:
    """The X448 key matching `_x448_public`: Ed448's own secret scalar (RFC 8032 5.2.5)."""
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return x448.X448PrivateKey.from_private_bytes(
        hashlib.shake_256(seed).digest(2 * _ED448_SEED)[:_X448_KEY]
    )


def _sign(key: SigningKey, data: bytes) -> bytes:
    if isinstance(key, ed448.Ed448PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(key_profile(key).ecdsa_hash))


def _verify(public_key: object, signature: bytes, data: bytes) -> None:
    profile = key_profile(public_key)
    algorithm = None if profile is KeyProfile.ISO15118_20_ED448 else profile.ecdsa_hash
    try:
        verify_signature(public_key, signature, data, algorithm)
    except InvalidSignature as exc:
        raise SignatureError("the signature does not match the signed data") from exc


def _chain_json(chain: Sequence[x509.Certificate]) -> list[str]:
    return [_b64(c.public_bytes(serialization.Encoding.DER)) for c in chain]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise InstallationError("a binary field must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise InstallationError(f"not valid base64: {exc}") from exc
