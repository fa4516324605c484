"""`evgi wallet`: drivers' prepaid wallets in the charging token, and the tariffs they pay."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from evgi.cli.context import app, console, opened_platform, print_json, read_json_arg
from evgi.core.units import Money, kwh_to_wh
from evgi.settlement import CoreClient, SettlementTerms, Wallets, parse_tariff
from evgi.storage import ChargingStore

wallet_app = typer.Typer(
    help="Prepaid wallets: top up, withdraw, balances, history, prices before charging.",
    no_args_is_help=True,
)
app.add_typer(wallet_app, name="wallet")

Name = Annotated[str, typer.Argument(help="wallet name (lower-case letters, digits, . _ -)")]
Amount = Annotated[str, typer.Argument(help="amount such as '20.00 EUR' (or '20.00')")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


@contextmanager
def _wallets(ctx: typer.Context) -> Iterator[Wallets]:
    with opened_platform(ctx) as platform:
        currency = SettlementTerms.from_settings(platform.settings).hold.currency
        yield Wallets.for_platform(platform, currency)


def _money(wallets: Wallets, text: str) -> Money:
    text = text.strip()
    return Money.parse(text if " " in text else f"{text} {wallets.currency}")


@wallet_app.command("topup")
def wallet_topup(
    ctx: typer.Context,
    name: Name,
    amount: Amount,
    id_token: Annotated[
        str | None, typer.Option("--id-token", help="also link this id token to the wallet")
    ] = None,
) -> None:
    """The eMSP mints `amount` into the wallet against the driver's payment (opens it)."""
    with _wallets(ctx) as wallets:
        receipt = wallets.topup(name, _money(wallets, amount))
        if id_token is not None:
            wallets.link(name, id_token)
        console.print(
            f"topped up {name}: balance {wallets.balance(name)} (tx {receipt.tx_hash}, "
            f"block {receipt.block})"
        )


@wallet_app.command("withdraw")
def wallet_withdraw(ctx: typer.Context, name: Name, amount: Amount) -> None:
    """Return `amount` to the eMSP, which burns it and pays the money out."""
    with _wallets(ctx) as wallets:
        receipts = wallets.withdraw(name, _money(wallets, amount))
        console.print(
            f"withdrew {amount} from {name}: balance {wallets.balance(name)} "
            f"(txs {', '.join(r.tx_hash for r in receipts)})"
        )


@wallet_app.command("balance")
def wallet_balance(ctx: typer.Context, name: Name, as_json: AsJson = False) -> None:
    """What the wallet can spend now, and apart from it what its open escrows hold for
    sessions under way."""
    with _wallets(ctx) as wallets:
        wallet = wallets.get(name)
        balance = wallets.balance_of(wallet.address)
        escrowed = wallets.escrowed(name)
        tokens = wallets.tokens(name)
    if as_json:
        print_json(
            {
                "wallet": name,
                "address": wallet.address,
                "currency": balance.currency,
                "balance_minor": balance.minor,
                "escrowed_minor": escrowed.minor,
                "id_tokens": tokens,
            }
        )
        return
    console.print(
        f"{name} ({wallet.address}): {balance}, {escrowed} in escrow; "
        f"id tokens: {', '.join(tokens) or '-'}"
    )


@wallet_app.command("history")
def wallet_history(ctx: typer.Context, name: Name, as_json: AsJson = False) -> None:
    """Every movement of the wallet's tokens, from the ledger's receipts."""
    with _wallets(ctx) as wallets:
        entries = wallets.history(name)
        currency = wallets.currency
    if as_json:
        print_json([e.to_json() for e in entries])
        return
    table = Table("time", "block", "kind", "amount", "reference", "tx")
    for e in entries:
        table.add_row(
            e.at.isoformat(timespec="seconds"),
            str(e.block),
            e.kind,
            str(Money(currency, e.amount_minor)),
            e.reference or "-",
            e.tx_hash[:18] + "…",
        )
    console.print(table)


@wallet_app.command("link")
def wallet_link(ctx: typer.Context, name: Name, id_token: str) -> None:
    """Charge the sessions `id_token` starts to the wallet (prepaid: escrow at each start)."""
    with _wallets(ctx) as wallets:
        wallets.link(name, id_token)
    console.print(f"{id_token} now charges to wallet {name}")


@wallet_app.command("tariff")
def wallet_tariff(
    ctx: typer.Context,
    station_id: str,
    tariff: Annotated[str, typer.Argument(help="OCPI 2.2.1 Tariff JSON, or @file")],
    time_zone: Annotated[
        str, typer.Option("--time-zone", help="IANA zone of the station's Location")
    ] = "UTC",
) -> None:
    """The tariff prepaid wallets pay at `station_id` from now on."""
    with opened_platform(ctx) as platform:
        core = CoreClient.for_platform(platform, ChargingStore(platform.db))
        stored = core.set_tariff(station_id, parse_tariff(read_json_arg(tariff)), time_zone)
    console.print(f"{station_id} charges tariff {parse_tariff(stored.tariff).id} ({time_zone})")


@wallet_app.command("quote")
def wallet_quote(
    ctx: typer.Context,
    station_id: str,
    id_token: str,
    kwh: Annotated[str, typer.Option("--kwh", help="energy to charge, e.g. 20 or 12.5")] = "20",
    minutes: Annotated[int, typer.Option(help="how long the car stays")] = 60,
    kw: Annotated[int, typer.Option("--kw", help="charging power in kW")] = 11,
    as_json: AsJson = False,
) -> None:
    """The price of a planned session before it starts; the token's next start at the station
    (within the quote's validity) pays the tariff quoted here."""
    with opened_platform(ctx) as platform:
        core = CoreClient.for_platform(platform, ChargingStore(platform.db))
        quote = core.quote(
            station_id, id_token, kwh_to_wh(kwh), timedelta(minutes=minutes), kw * 1000
        )
    cost = quote.cost
    if as_json:
        print_json(
            {
                "station_id": station_id,
                "tariff_id": cost.tariff_id,
                "tariff_digest": quote.locked.digest,
                "currency": cost.currency,
                "total_excl_vat_minor": cost.total_excl_vat.minor,
                "total_incl_vat_minor": cost.total_incl_vat.minor,
            }
        )
        return
    console.print(
        f"{kwh} kWh at {station_id} in {minutes} min: {cost.total_incl_vat} incl. VAT "
        f"({cost.total_excl_vat} excl.), tariff {cost.tariff_id} locked as {quote.locked.digest}"
    )
