"""`evgi pki`: the CSMS certificate authority."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from rich.table import Table

from evgi.cli.context import (
    app,
    console,
    err,
    opened_platform,
    print_json,
    settings_of,
)
from evgi.core.errors import EvgiError, ValidationError
from evgi.pnc import (
    CertificateAuthority,
    Hierarchies,
    Iso15118,
    LeafRole,
    csms_authority,
)

pki_app = typer.Typer(
    help="The CSMS root CA and its server and station certificates; the ISO 15118 "
    "hierarchies (init, issue, revoke, show).",
    no_args_is_help=True,
)
app.add_typer(pki_app, name="pki")


CertOut = Annotated[Path, typer.Option("--out", help="folder for the PEM files")]


@contextmanager
def _csms_authority(ctx: typer.Context) -> Iterator[CertificateAuthority]:
    """The CSMS root CA (created on first use), with refusals reported as one line, exit 2."""
    try:
        yield csms_authority(settings_of(ctx))
    except EvgiError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc


def _written(paths: tuple[Path, Path]) -> None:
    console.print(f"certificate chain: {paths[0]}")
    console.print(f"private key:       {paths[1]}")


@pki_app.command("ca-init")
def pki_ca_init(ctx: typer.Context) -> None:
    """Create the CSMS root CA under data-dir/pki (or show the one there): stations trust it."""
    with _csms_authority(ctx) as authority:
        console.print(f"CSMS root CA: {authority.certificate.subject.rfc4514_string()}")
        console.print(f"certificate:  {authority.certificate_path}")
        fingerprint = authority.certificate.fingerprint(hashes.SHA256()).hex(":")
        console.print(f"SHA-256:      {fingerprint}", emoji=False, soft_wrap=True)


@pki_app.command("issue-station")
def pki_issue_station(ctx: typer.Context, station_id: str, out: CertOut = Path(".")) -> None:
    """Issue a charging station's client certificate (CN = station id) for security profile 3.

    The key file is encrypted with EVGI_KEYSTORE_PASSWORD when one is set.
    """
    with _csms_authority(ctx) as authority:
        issued = authority.issue_station_certificate(station_id)
        _written(issued.write(out, station_id, settings_of(ctx).keystore_password))


@pki_app.command("issue-server")
def pki_issue_server(
    ctx: typer.Context,
    host: Annotated[
        list[str] | None, typer.Option(help="DNS name or IP to add (repeatable)")
    ] = None,
    out: CertOut = Path("."),
) -> None:
    """Issue the CSMS's TLS server certificate for localhost, 127.0.0.1 and the host names."""
    settings = settings_of(ctx)
    with _csms_authority(ctx) as authority:
        issued = authority.issue_server_certificate([*settings.tls_host_names, *(host or [])])
        _written(issued.write(out, "csms-server", settings.keystore_password))


# --- the ISO 15118 hierarchies ------------------------------------------------------------


@contextmanager
def _hierarchies(ctx: typer.Context) -> Iterator[Hierarchies]:
    with opened_platform(ctx) as platform:
        yield Hierarchies(platform.settings, platform.db)


@pki_app.command("init")
def pki_init(ctx: typer.Context) -> None:
    """Build the ISO 15118 test ecosystem: V2G roots (CPO and CPS lines), MO and OEM roots,
    each over two sub-CAs, on the -2 (P-256) and -20 (P-521, Ed448) profiles. Idempotent."""
    with _hierarchies(ctx) as hierarchies:
        created = {a.name for a in hierarchies.init()}
        table = Table("CA", "role", "branch", "profile", "key", "new")
        for authority in hierarchies.authorities():
            table.add_row(
                authority.name,
                authority.role.value,
                authority.branch.value,
                authority.profile.value,
                authority.key_algorithm,
                "yes" if authority.name in created else "",
            )
        console.print(table)
        console.print(f"OCSP and CRLs at {settings_of(ctx).pki_url}/pki/")


@pki_app.command("issue")
def pki_issue(
    ctx: typer.Context,
    role: Annotated[LeafRole, typer.Argument(help="secc, cps, contract or provisioning")],
    name: Annotated[str, typer.Argument(help="SECC id, CPS name, eMAID or PCID (the CN)")],
    ca: Annotated[str | None, typer.Option(help="issuing sub-CA 2 (default: first)")] = None,
    profile: Annotated[Iso15118, typer.Option(help="certificate profile")] = Iso15118.PART_2,
    out: CertOut = Path("."),
) -> None:
    """Issue an end-entity certificate; writes NAME.pem (leaf and sub-CAs) and NAME.key.pem."""
    with _hierarchies(ctx) as hierarchies:
        issuer = ca or hierarchies.default_issuer(role, profile)
        issued = hierarchies.issue(issuer, name, None)
        _written(issued.write(out, name, settings_of(ctx).keystore_password))
        console.print(f"serial:            {issued.certificate.serial_number:x}")
        console.print(f"issuer:            {issuer}")


@pki_app.command("revoke")
def pki_revoke(
    ctx: typer.Context,
    serial: Annotated[str, typer.Argument(help="serial number, hex")],
    reason: Annotated[str, typer.Option(help="RFC 5280 reason, e.g. keyCompromise")] = (
        "unspecified"
    ),
) -> None:
    """Revoke a certificate the hierarchies issued: the next OCSP answer and CRL show it."""
    with _hierarchies(ctx) as hierarchies:
        number = _serial(serial)
        try:
            flag = x509.ReasonFlags(reason)
        except ValueError as exc:
            reasons = ", ".join(r.value for r in x509.ReasonFlags)
            raise ValidationError(f"reason {reason!r} is not one of {reasons}") from exc
        record = hierarchies.find(number)
        revocation = hierarchies.revoke(record.issuer, number, flag)
        console.print(
            f"revoked {record.role} {record.common_name!r} (serial {number:x}, CA {record.issuer}) "
            f"at {revocation.revoked_at.isoformat()} ({revocation.reason.value})"
        )


@pki_app.command("show")
def pki_show(
    ctx: typer.Context,
    what: Annotated[str, typer.Argument(help="a CA name or a certificate serial (hex)")],
) -> None:
    """A CA (certificate, chain, URLs) or an issued certificate (status), as JSON."""
    with _hierarchies(ctx) as hierarchies:
        if what in {a.name for a in hierarchies.authorities()}:
            authority = hierarchies.get(what)
            urls = hierarchies.urls(what)
            print_json(
                {
                    "name": authority.name,
                    "role": authority.role.value,
                    "branch": authority.branch.value,
                    "profile": authority.profile.value,
                    "keyAlgorithm": authority.key_algorithm,
                    "parent": authority.parent,
                    "subject": authority.certificate.subject.rfc4514_string(),
                    "notAfter": authority.certificate.not_valid_after_utc.isoformat(),
                    "ocsp": urls.ocsp,
                    "crl": urls.crl,
                    "certificate": authority.certificate.public_bytes(
                        serialization.Encoding.PEM
                    ).decode(),
                }
            )
            return
        record = hierarchies.find(_serial(what))
        print_json(
            {
                "serial": f"{record.serial:x}",
                "issuer": record.issuer,
                "role": record.role,
                "commonName": record.common_name,
                "notAfter": record.not_after.isoformat(),
                "status": "revoked" if record.revoked_at else "good",
                "revokedAt": record.revoked_at.isoformat() if record.revoked_at else None,
                "reason": record.reason,
            }
        )


def _serial(text: str) -> int:
    try:
        return int(text.replace(":", ""), 16)
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not a hex serial number") from exc
