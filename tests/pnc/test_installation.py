"""Contract installation: the contract key sealed for one vehicle under each ISO 15118 profile,
signed by the CPS, opened by the vehicle; altered or misdirected data is refused."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from evgi.core import emaid_check_digit
from evgi.pnc import (
    ROOT_CA_PROFILE,
    CertificateAuthority,
    CertificateInstallationResponse,
    CertificateProfile,
    CertificateUpdateRequest,
    ContractKey,
    InstallationError,
    InstalledContract,
    IssuedCertificate,
    KeyProfile,
    generate_contract_key,
    install_contract,
    open_contract_key,
    seal_contract_key,
    seal_contract_update,
    sign_installation,
    subject_name,
    update_contract,
)

ALGORITHMS = {
    KeyProfile.ISO15118_2: "secp256r1",
    KeyProfile.ISO15118_20_SECP521R1: "secp521r1",
    KeyProfile.ISO15118_20_ED448: "ed448",
}
LEAF = CertificateProfile(frozenset({"digital_signature", "key_agreement"}), timedelta(days=30))
PCID = "WMIV2GPROVTEST0017"
EMAID = "DEABCC0NTRACT1"
EMAID = EMAID + emaid_check_digit(EMAID)


@dataclass
class Vehicle:
    """The OEM side: a provisioning certificate and the key only the vehicle holds."""

    certificate: x509.Certificate
    key: ContractKey


@dataclass
class Ecosystem:
    profile: KeyProfile
    v2g_root: CertificateAuthority
    mo: CertificateAuthority
    oem: CertificateAuthority
    cps: IssuedCertificate

    def vehicle(self, pcid: str = PCID) -> Vehicle:
        issued = self.oem.issue(
            subject_name(pcid, "Example OEM"), LEAF, key_algorithm=ALGORITHMS[self.profile]
        )
        return Vehicle(issued.certificate, _key(issued))

    def contract(self, vehicle: Vehicle, emaid: str = EMAID) -> CertificateInstallationResponse:
        """The eMSP's steps (contract key, certificate, sealing) and the CPS's signature."""
        key = generate_contract_key(self.profile)
        certificate = self.mo.issue(
            subject_name(emaid, "Example MO"), LEAF, key.public_key()
        ).certificate
        sealed = seal_contract_key(key, certificate, vehicle.certificate)
        return sign_installation(
            (certificate, self.mo.certificate), sealed, _key(self.cps), (self.cps.certificate,)
        )


def _key(issued: IssuedCertificate) -> ContractKey:
    key = issued.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey)
    return key


@pytest.fixture(params=list(KeyProfile), ids=[p.value for p in KeyProfile])
def ecosystem(request: pytest.FixtureRequest, tmp_path: Path) -> Ecosystem:
    return make_ecosystem(request.param, tmp_path)


def make_ecosystem(profile: KeyProfile, tmp_path: Path) -> Ecosystem:
    algorithm = ALGORITHMS[profile]
    root = CertificateAuthority.create(
        tmp_path / "v2g", subject_name("V2G Root", "Example"), key_algorithm=algorithm
    )
    mo = CertificateAuthority.create(
        tmp_path / "mo",
        subject_name("MO Sub-CA", "Example MO"),
        key_algorithm=algorithm,
        profile=ROOT_CA_PROFILE,
        parent=root,
    )
    oem = CertificateAuthority.create(
        tmp_path / "oem", subject_name("OEM Root", "Example OEM"), key_algorithm=algorithm
    )
    cps = root.issue(subject_name("CPS", "Example"), LEAF, key_algorithm=algorithm)
    return Ecosystem(profile, root, mo, oem, cps)


def test_round_trip(ecosystem: Ecosystem) -> None:
    vehicle = ecosystem.vehicle()
    response = ecosystem.contract(vehicle)
    sealed = response.sealed_key
    assert sealed.profile is ecosystem.profile
    assert len(sealed.encrypted_private_key) == ecosystem.profile.encrypted_length
    assert len(sealed.dh_public_key) == ecosystem.profile.dh_public_length

    received = CertificateInstallationResponse.from_json(response.to_json())
    installed = install_contract(received, vehicle.key, PCID, [ecosystem.v2g_root.certificate])
    assert installed.emaid == EMAID
    assert installed.private_key.public_key() == response.contract_chain[0].public_key()
    # The vehicle uses the key: a challenge it signs verifies with the contract certificate.
    challenge = os.urandom(16)
    signature = installed.sign_challenge(challenge)
    public = response.contract_chain[0].public_key()
    if isinstance(public, ed448.Ed448PublicKey):
        public.verify(signature, challenge)
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        hash_ = ec.ECDSA(response.contract_chain[0].signature_hash_algorithm)  # type: ignore[arg-type]
        public.verify(signature, challenge, hash_)


def test_each_installation_uses_a_fresh_ephemeral_key(ecosystem: Ecosystem) -> None:
    vehicle = ecosystem.vehicle()
    first, second = ecosystem.contract(vehicle), ecosystem.contract(vehicle)
    assert first.sealed_key.dh_public_key != second.sealed_key.dh_public_key


def test_tampered_ciphertext_is_refused(ecosystem: Ecosystem) -> None:
    vehicle = ecosystem.vehicle()
    response = ecosystem.contract(vehicle)
    data = bytearray(response.sealed_key.encrypted_private_key)
    data[-1] ^= 0x01
    sealed = replace(response.sealed_key, encrypted_private_key=bytes(data))
    with pytest.raises(InstallationError):
        open_contract_key(sealed, vehicle.key, response.contract_chain[0], PCID)
    # Re-signed by the CPS, so only the decryption can catch it.
    resigned = sign_installation(
        response.contract_chain, sealed, _key(ecosystem.cps), response.sa_chain
    )
    with pytest.raises(InstallationError, match=r"altered|tag"):
        install_contract(resigned, vehicle.key, PCID, [ecosystem.v2g_root.certificate])


def test_tampered_response_fails_the_signature(ecosystem: Ecosystem) -> None:
    vehicle = ecosystem.vehicle()
    response = ecosystem.contract(vehicle)
    other = ecosystem.contract(vehicle)
    swapped = replace(response, sealed_key=other.sealed_key)
    with pytest.raises(InstallationError, match="CPS signature"):
        install_contract(swapped, vehicle.key, PCID, [ecosystem.v2g_root.certificate])
    body = response.to_json()
    body["emaid"] = "DEABCC0NTRACT2"
    with pytest.raises(InstallationError, match="CPS signature"):
        install_contract(
            CertificateInstallationResponse.from_json(body),
            vehicle.key,
            PCID,
            [ecosystem.v2g_root.certificate],
        )


def test_cps_chain_must_reach_a_trusted_root(ecosystem: Ecosystem, tmp_path: Path) -> None:
    vehicle = ecosystem.vehicle()
    response = ecosystem.contract(vehicle)
    stranger = CertificateAuthority.create(
        tmp_path / "stranger",
        subject_name("V2G Root", "Example"),
        key_algorithm=ALGORITHMS[ecosystem.profile],
    )
    with pytest.raises(InstallationError, match="CertChainError"):
        install_contract(response, vehicle.key, PCID, [stranger.certificate])
    with pytest.raises(InstallationError, match="no trusted root"):
        install_contract(response, vehicle.key, PCID, [])


def test_another_vehicle_cannot_decrypt(ecosystem: Ecosystem) -> None:
    vehicle, neighbour = ecosystem.vehicle(), ecosystem.vehicle("WMIV2GPROVTEST0025")
    response = ecosystem.contract(vehicle)
    with pytest.raises(InstallationError):
        install_contract(response, neighbour.key, PCID, [ecosystem.v2g_root.certificate])


def test_profiles_do_not_mix(tmp_path: Path) -> None:
    key = generate_contract_key(KeyProfile.ISO15118_20_SECP521R1)
    oem = CertificateAuthority.create(tmp_path / "oem", subject_name("OEM Root", "OEM"))
    vehicle = oem.issue(subject_name(PCID, "OEM"), LEAF)
    contract = oem.issue(subject_name(EMAID, "MO"), LEAF, key.public_key()).certificate
    with pytest.raises(InstallationError, match="one profile"):
        seal_contract_key(key, contract, vehicle.certificate)
    rsa_less = oem.issue(subject_name(PCID, "OEM"), LEAF, key_algorithm="secp384r1")
    with pytest.raises(InstallationError, match="secp384r1"):
        seal_contract_key(key, contract, rsa_less.certificate)


def test_malformed_emaid_and_pcid_are_refused(tmp_path: Path) -> None:
    oem = CertificateAuthority.create(tmp_path / "oem", subject_name("OEM Root", "OEM"))
    key = generate_contract_key(KeyProfile.ISO15118_2)
    good = oem.issue(subject_name(PCID, "OEM"), LEAF).certificate
    bad_pcid = oem.issue(subject_name("TOO-SHORT", "OEM"), LEAF).certificate
    contract = oem.issue(subject_name(EMAID, "MO"), LEAF, key.public_key()).certificate
    with pytest.raises(InstallationError, match="PCID"):
        seal_contract_key(key, contract, bad_pcid)

    cps = oem.issue(subject_name("CPS", "Example"), LEAF)
    sealed = seal_contract_key(key, contract, good)
    for emaid in ("DEABCC0NTRACT1" + "Z", "DE*ABC*C0NTRACT1", "D3ABCC0NTRACT1"):
        wrong_check = oem.issue(subject_name(emaid, "MO"), LEAF, key.public_key()).certificate
        with pytest.raises(InstallationError, match="eMAID"):
            sign_installation(
                (wrong_check,),
                seal_contract_key(key, wrong_check, good),
                _key(cps),
                (cps.certificate,),
            )
    response = sign_installation((contract,), sealed, _key(cps), (cps.certificate,))
    assert response.emaid == EMAID


def test_malformed_json_is_named() -> None:
    with pytest.raises(InstallationError, match="lacks"):
        CertificateInstallationResponse.from_json({"profile": "iso15118-2"})
    with pytest.raises(InstallationError, match="profile"):
        CertificateInstallationResponse.from_json({"profile": "iso15118-3"})
    with pytest.raises(InstallationError, match="base64"):
        CertificateInstallationResponse.from_json(
            {
                "profile": "iso15118-2",
                "contractSignatureEncryptedPrivateKey": "***",
                "dhPublicKey": "",
                "contractSignatureCertChain": [],
                "saProvisioningCertificateChain": [],
                "emaid": EMAID,
                "signature": "",
            }
        )


def test_update_seals_the_new_key_for_the_current_contract(tmp_path: Path) -> None:
    """ISO 15118-2's CertificateUpdate: the request signed with the current contract key, the
    new key readable with that key alone ([V2G2-818]), not with the provisioning key."""
    ecosystem = make_ecosystem(KeyProfile.ISO15118_2, tmp_path)
    vehicle = ecosystem.vehicle()
    roots = [ecosystem.v2g_root.certificate]
    current = install_contract(ecosystem.contract(vehicle), vehicle.key, PCID, roots)

    request = CertificateUpdateRequest.from_json(current.update_request().to_json())
    request.verify()
    assert request.emaid == EMAID and request.contract_chain == current.chain

    key = generate_contract_key(KeyProfile.ISO15118_2)
    certificate = ecosystem.mo.issue(
        subject_name(EMAID, "Example MO"), LEAF, key.public_key()
    ).certificate
    sealed = seal_contract_update(key, certificate, request.contract_chain[0])
    response = sign_installation(
        (certificate, ecosystem.mo.certificate),
        sealed,
        _key(ecosystem.cps),
        (ecosystem.cps.certificate,),
    )
    updated = update_contract(
        CertificateInstallationResponse.from_json(response.to_json()), current, roots
    )
    assert updated.emaid == EMAID and updated.chain[0] == certificate
    assert updated.private_key.public_key() == key.public_key()
    # Sealed for the contract key: neither the provisioning key nor another contract opens it.
    with pytest.raises(InstallationError, match="altered or sealed for another vehicle"):
        install_contract(response, vehicle.key, PCID, roots)
    stranger = InstalledContract(EMAID, current.chain, generate_contract_key(KeyProfile.ISO15118_2))
    with pytest.raises(InstallationError, match="altered or sealed for another vehicle"):
        update_contract(response, stranger, roots)


def test_update_requests_must_be_signed_by_the_contract_key(tmp_path: Path) -> None:
    ecosystem = make_ecosystem(KeyProfile.ISO15118_2, tmp_path)
    vehicle = ecosystem.vehicle()
    roots = [ecosystem.v2g_root.certificate]
    current = install_contract(ecosystem.contract(vehicle), vehicle.key, PCID, roots)
    body = current.update_request().to_json()
    # Another key's signature, and the request altered after signing, are both refused.
    forged = InstalledContract(EMAID, current.chain, generate_contract_key(KeyProfile.ISO15118_2))
    for request in (
        forged.update_request(),
        CertificateUpdateRequest.from_json({**body, "emaid": "DEABCC0NTRACT2"}),
    ):
        with pytest.raises(InstallationError, match="not signed with its contract key"):
            request.verify()
    with pytest.raises(InstallationError, match="lacks signature"):
        CertificateUpdateRequest.from_json({k: v for k, v in body.items() if k != "signature"})
    with pytest.raises(InstallationError, match="eMAID"):
        CertificateUpdateRequest.from_json({**body, "emaid": "not an eMAID"})


@pytest.mark.parametrize(
    "profile", [KeyProfile.ISO15118_20_SECP521R1, KeyProfile.ISO15118_20_ED448]
)
def test_only_iso15118_2_updates(profile: KeyProfile, tmp_path: Path) -> None:
    """ISO 15118-20 has no CertificateUpdate: its vehicles install the new contract."""
    mo = CertificateAuthority.create(
        tmp_path / "mo", subject_name("MO Root", "MO"), key_algorithm=ALGORITHMS[profile]
    )
    old_key, key = generate_contract_key(profile), generate_contract_key(profile)
    current = mo.issue(subject_name(EMAID, "MO"), LEAF, old_key.public_key()).certificate
    renewed = mo.issue(subject_name(EMAID, "MO"), LEAF, key.public_key()).certificate
    with pytest.raises(InstallationError, match="only ISO 15118-2 updates"):
        seal_contract_update(key, renewed, current)
