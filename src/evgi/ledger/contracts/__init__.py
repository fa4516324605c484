"""Vyper sources of the `evm` ledger engine, compiled in-process with the `vyper` package.

Compiling here (no solc download, no build step) keeps one source of truth that a fresh machine
can deploy; `vyper` comes with the `bench` extra, so it is imported only when a contract is asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from evgi.core.errors import ConfigError, ValidationError

CONTRACTS_DIR = Path(__file__).parent
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class CompiledContract:
    """What a deployer needs: the ABI and the creation bytecode (0x-prefixed hex)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def contract_names() -> list[str]:
    return sorted(path.stem for path in CONTRACTS_DIR.glob("*.vy"))


def contract_source(name: str) -> str:
    """Source of `<name>.vy`; the name is checked so that no path outside this folder is read."""
    if not _NAME.match(name) or not (CONTRACTS_DIR / f"{name}.vy").is_file():
        raise ValidationError(f"no contract {name!r}; known: {', '.join(contract_names())}")
    return (CONTRACTS_DIR / f"{name}.vy").read_text(encoding="utf-8")


@cache
def compile_contract(name: str) -> CompiledContract:
    """Compile `<name>.vy` with the installed vyper (cached: a compile takes a fraction of a second
    and the source does not change while the process runs)."""
    source = contract_source(name)
    try:
        import vyper
    except ImportError as exc:
        raise ConfigError(
            "compiling ledger contracts needs the vyper package: pip install 'evgi[bench]'"
        ) from exc
    output: dict[str, Any] = vyper.compile_code(
        source,
        contract_path=str(CONTRACTS_DIR / f"{name}.vy"),
        output_formats=["abi", "bytecode"],
    )
    bytecode = str(output["bytecode"])
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    return CompiledContract(name, list(output["abi"]), bytecode)


__all__ = [
    "CONTRACTS_DIR",
    "CompiledContract",
    "compile_contract",
    "contract_names",
    "contract_source",
]
