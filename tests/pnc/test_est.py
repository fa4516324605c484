"""EST (RFC 7030) on a running `evgi serve`: CA certificates, and PKCS#10 requests built with
`cryptography` enrolled with the CPO and MO lines, certificates back as certs-only PKCS#7."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from evgi.core import emaid_check_digit
from tests.pnc.pool_scene import PoolScene, pool_fixture  # noqa: F401 (the fixture)

PKCS10 = {"Content-Type": "application/pkcs10"}


def csr(
    common: str, curve: ec.EllipticCurve | None = None, *, ca: bool = False, organization: str = ""
) -> bytes:
    """A PKCS#10 request as an EST client sends it: base64 DER."""
    key = ec.generate_private_key(curve or ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if organization:
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    request = builder.sign(
        key, hashes.SHA512() if key.curve.name == "secp521r1" else hashes.SHA256()
    )
    return base64.encodebytes(request.public_bytes(serialization.Encoding.DER))


def certificates(reply: Any) -> list[x509.Certificate]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/pkcs7-mime")
    assert "certs-only" in reply.headers["content-type"]
    return pkcs7.load_der_pkcs7_certificates(base64.b64decode(reply.content))


def enroll(scene: PoolScene, path: str, client: str | None, body: bytes) -> Any:
    headers = {**PKCS10, **(scene.auth(client) if client else {})}
    return scene.http.post(f"{scene.base}/.well-known/est{path}", content=body, headers=headers)


def test_est_enrollment(pool: PoolScene) -> None:
    scene = pool
    cpo_cas = certificates(scene.http.get(f"{scene.base}/.well-known/est/cacerts"))
    cpo_sub = scene.hierarchies.get("v2g-a-cpo-2").certificate
    assert cpo_sub in cpo_cas and scene.root("v2g-a") in cpo_cas
    mo_cas = certificates(scene.http.get(f"{scene.base}/.well-known/est/mo/cacerts"))
    assert scene.hierarchies.get("mo-a-mo-2").certificate in mo_cas
    assert cpo_sub not in mo_cas

    # A CPO enrolls an SECC leaf; the certificate is signed by the CPO sub-CA 2.
    (secc,) = certificates(enroll(scene, "/simpleenroll", "cpo", csr("SECC-0001")))
    secc.verify_directly_issued_by(cpo_sub)
    assert secc.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SECC-0001"
    assert secc.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False

    # An eMSP enrolls a contract certificate under the MO line; -20 keys go to -20 CAs.
    contract_id = "DEABCC0NTRACT1"
    contract_id += emaid_check_digit(contract_id)
    (contract,) = certificates(enroll(scene, "/mo/simpleenroll", "emsp", csr(contract_id)))
    contract.verify_directly_issued_by(scene.hierarchies.get("mo-a-mo-2").certificate)
    (modern,) = certificates(
        enroll(scene, "/cpo/simpleenroll", "cpo", csr("SECC-0002", ec.SECP521R1()))
    )
    modern.verify_directly_issued_by(scene.hierarchies.get("v2g-p521-cpo-2").certificate)

    # An operator running its own issuing CA gets a sub-CA 2 under the line's sub-CA 1,
    # recorded so the OCSP responder answers for it.
    request = csr("Example CPO Sub-CA 2", ca=True, organization="Example CPO")
    (sub_ca,) = certificates(enroll(scene, "/cpo/simpleenroll", "cpo", request))
    sub_ca.verify_directly_issued_by(scene.hierarchies.get("v2g-a-cpo-1").certificate)
    constraints = sub_ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert scene.hierarchies.find(sub_ca.serial_number).issuer == "v2g-a-cpo-1"

    def refused(reply: Any, status: int, code: str) -> None:
        assert reply.status_code == status, reply.text
        assert reply.json()["detail"]["code"] == code, reply.text

    refused(enroll(scene, "/simpleenroll", None, csr("SECC-0003")), 401, "unauthenticated")
    refused(enroll(scene, "/simpleenroll", "oem", csr("SECC-0003")), 403, "wrong_role")
    refused(enroll(scene, "/cpo/simpleenroll", "emsp", csr("SECC-0003")), 403, "wrong_role")
    refused(enroll(scene, "/simpleenroll", "cpo", b"not a request"), 400, "bad_certificate")
    refused(enroll(scene, "/mo/simpleenroll", "emsp", csr("NOT-AN-EMAID")), 400, "invalid")
    refused(
        enroll(scene, "/simpleenroll", "cpo", csr("SECC-0004", ec.SECP384R1())),
        400,
        "bad_certificate",
    )
    refused(
        enroll(scene, "/cpo/simpleenroll", "cpo", csr("Nameless Sub-CA", ca=True)),
        400,
        "bad_certificate",
    )
    reply = scene.http.post(
        f"{scene.base}/.well-known/est/simpleenroll",
        content=csr("SECC-0005"),
        headers={**scene.auth("cpo"), "Content-Type": "application/json"},
    )
    refused(reply, 415, "unsupported_media_type")
    assert scene.http.get(f"{scene.base}/.well-known/est/ca/cacerts").status_code == 422
