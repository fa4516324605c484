"""An IEEE 2030.5 client written for the tests from the standard alone: httpx over TLS 1.2 with
a client certificate, lxml for the documents. It shares no code with evgi's server."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import httpx
from lxml import etree

NS = "urn:ieee:std:2030.5:ns"
SEP = {"s": NS}
MEDIA = "application/sep+xml"


def tls_context(ca: Path, certificate: Path | None, key: Path | None) -> ssl.SSLContext:
    """TLS 1.2 offering the 2030.5 suite first, trusting only `ca`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-GCM-SHA256")
    context.load_verify_locations(cafile=str(ca))
    if certificate is not None:
        context.load_cert_chain(str(certificate), str(key))
    return context


def lfdi_of(certificate_pem: Path) -> str:
    """2030.5 6.3.4: SHA-256 over the certificate DER, first 160 bits, as hex."""
    der = ssl.PEM_cert_to_DER_cert(
        certificate_pem.read_text().split("-----END CERTIFICATE-----")[0]
        + "-----END CERTIFICATE-----\n"
    )
    return hashlib.sha256(der).hexdigest()[:40].upper()


def sfdi_of(lfdi: str) -> int:
    """The first 36 bits in decimal, then a check digit making the digit sum a multiple of 10."""
    value = int(lfdi[:9], 16)
    check = (10 - sum(int(d) for d in str(value)) % 10) % 10
    return value * 10 + check


class SepClient:
    def __init__(self, base: str, context: ssl.SSLContext, schema: etree.XMLSchema | None):
        self.http = httpx.Client(base_url=base, verify=context, timeout=20)
        self.schema = schema

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> etree._Element:
        """GET a resource that must exist; the document is checked against the XSD."""
        answer = self.http.get(path, headers={"Accept": MEDIA})
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith(MEDIA)
        root = etree.fromstring(answer.content)
        if self.schema is not None:
            self.schema.assertValid(root)
        return root

    def status(
        self, method: str, path: str, body: str | bytes | None = None, content_type: str = MEDIA
    ) -> httpx.Response:
        content = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": content_type} if content is not None else {}
        return self.http.request(method, path, content=content, headers=headers)


def text(root: etree._Element, path: str) -> str:
    found = root.find(path, SEP)
    assert found is not None and found.text is not None, path
    return found.text


def href(root: etree._Element, path: str) -> str:
    found = root.find(path, SEP)
    assert found is not None, path
    return str(found.get("href"))
