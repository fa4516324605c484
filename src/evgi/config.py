"""Settings: embedded defaults, overridden by a TOML file, overridden by EVGI_* variables.

The TOML file is `./evgi.toml` unless EVGI_CONFIG names another one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVGI_", extra="forbid")

    data_dir: Path = Field(default=Path("evgi-data"), description="keys, SQLite file, reports")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="least severe log line the `evgi` command prints"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite in data_dir"
    )
    ledger: Literal["local", "evm"] = "local"
    rpc_url: str | None = Field(
        default=None, description="JSON-RPC endpoint of the EVM network (ledger = evm)"
    )
    evm_dev_funding_wei: int = Field(
        default=0,
        ge=0,
        description="on a development node (Hardhat, geth --dev): wei its first unlocked account "
        "sends to each evgi account that has no gas; 0 = never",
    )
    chain_id: int = Field(
        default=1337, ge=1, description="chain id in DIDs and signed txs (evm: the node's)"
    )
    keystore_password: str = Field(
        default="", description="password of the key files in data_dir/keys and data_dir/pki"
    )
    block_max_transactions: int = Field(default=2000, ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    ocpp_host: str = "127.0.0.1"
    ocpp_port: int = 9000
    ocpp_unknown_stations: Literal["reject", "pending"] = Field(
        default="reject",
        description="a station not registered is refused (404), or let in and booted Pending",
    )
    ocpp_heartbeat_interval: int = Field(default=300, ge=1, description="seconds, at boot")
    ocpp_boot_retry_interval: int = Field(
        default=60, ge=1, description="seconds a Pending or Rejected station waits to re-boot"
    )
    ocpp_call_timeout: float = Field(
        default=30, gt=0, description="seconds a station has to answer a command"
    )
    ocpp_tls: bool = Field(
        default=False,
        description="wss:// with a certificate of the CSMS root CA (security profiles 2 and 3)",
    )
    ocpp_max_message_size: int = Field(
        default=131072, ge=1024, description="largest OCPP frame in bytes; larger closes (1009)"
    )
    ocpp_nominal_voltage: float = Field(
        default=230.0,
        gt=0,
        description="volts per phase for converting charging limits between A and W",
    )
    cpo_name: str = Field(default="evgi", description="operator (O) in the CSMS certificates")
    settlement_hold: str = Field(
        default="50.00 EUR",
        description="amount a prepaid wallet must hold and puts in escrow at each session start; "
        "its currency is that of the wallets' charging token",
    )
    settlement_fee_bp: int = Field(
        default=0, ge=0, le=10_000, description="eMSP fee, basis points of a session's cost"
    )
    settlement_session_timeout: int = Field(
        default=86_400,
        ge=60,
        description="seconds after its start a session that never ended is settled on its "
        "meter values so far; its escrow may be refunded by anyone as long again later",
    )
    settlement_closing_process: bool = Field(
        default=True,
        description="price sessions, build their CDRs and sign their settlements in a process "
        "beside the settlement worker (local ledger engine only), so settlement uses two cores",
    )
    settlement_export_price: str | None = Field(
        default=None,
        description="paid per kWh a vehicle sends back to the grid (e.g. '0.20 EUR'), to the "
        "wallet of its id token when the transaction ends; unset: export is not paid",
    )
    settlement_export_payer: str | None = Field(
        default=None,
        description="wallet (a program's budget) that pays for exported energy; unset: the CPO",
    )
    tls_host_names: list[str] = Field(
        default_factory=list, description="DNS names and IPs the CSMS server certificate adds"
    )
    grid_host: str = Field(default="127.0.0.1", description="address of the IEEE 2030.5 server")
    grid_port: int = Field(default=8443, description="HTTPS port of the IEEE 2030.5 server (mTLS)")
    grid_nominal_hz: float = Field(
        default=60.0,
        gt=0,
        description="nominal frequency of the area power system; the IEEE 1547 defaults of the "
        "EVSE-side 2030.5 client are carried to it from their 60 Hz values",
    )
    grid_nominal_v: float = Field(
        default=240.0, gt=0, description="nominal voltage (VN) at the EVSE-side 2030.5 client"
    )
    grid_schema: Path | None = Field(
        default=None,
        description="path of IEEE's sep_2018.xsd: when set, every 2030.5 document in or out is "
        "validated against it (IEEE's terms do not let evgi ship the file)",
    )
    pki_base_url: str | None = Field(
        default=None,
        description="URL relying parties reach this server's /pki routes at (OCSP and CRLs, "
        "written into every ISO 15118 certificate); default http://http_host:http_port",
    )
    cdr_anchor_interval: float = Field(
        default=900, gt=0, description="seconds between Merkle anchors of new CDRs on the ledger"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("EVGI_CONFIG", "evgi.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _evm_needs_rpc(self) -> Settings:
        if self.ledger == "evm" and not self.rpc_url:
            raise ValueError("ledger = evm needs rpc_url (EVGI_RPC_URL or --rpc)")
        return self

    @property
    def evm_deployment_file(self) -> Path:
        """Addresses of the contracts the evm engine deployed, so later runs attach to them."""
        return self.data_dir / "evm-deployment.json"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'evgi.db').resolve()}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def pki_url(self) -> str:
        return self.pki_base_url or f"http://{self.http_host}:{self.http_port}"


def load_settings(**overrides: object) -> Settings:
    """Settings from the file and environment, with explicit (CLI) overrides taking precedence."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
