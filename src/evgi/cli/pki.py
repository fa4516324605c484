"""`evgi pki`: the CSMS certificate authority."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import hashes

from evgi.cli.context import (
    app,
    console,
    err,
    settings_of,
)
from evgi.core.errors import EvgiError
from evgi.pnc import CertificateAuthority, csms_authority

pki_app = typer.Typer(
    help="The CSMS root CA and the server and station certificates it issues.",
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
