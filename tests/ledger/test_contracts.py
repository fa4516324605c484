"""The Vyper sources of the evm engine compile in-process, each with the functions it promises."""

from __future__ import annotations

import pytest

from evgi.core import ValidationError
from evgi.ledger.contracts import compile_contract, contract_names, contract_source

pytest.importorskip("vyper")

FUNCTIONS = {
    "token": {
        "create",
        "grant_issuer",
        "mint",
        "burn",
        "transfer",
        "lock",
        "balanceOf",
        "totalSupply",
        "isTrustAnchor",
    },
    "escrow": {"open", "settle", "refund", "escrows", "total"},
    # ERC-1056's interface, as resolvers call it.
    "registry": {
        "identityOwner",
        "changeOwner",
        "addDelegate",
        "revokeDelegate",
        "validDelegate",
        "setAttribute",
        "revokeAttribute",
        "changed",
        "owners",
        "delegates",
    },
    "anchors": {"put", "anchors"},
}
ERC1056_EVENTS = {
    "DIDOwnerChanged": ["address", "address", "uint256"],
    "DIDDelegateChanged": ["address", "bytes32", "address", "uint256", "uint256"],
    "DIDAttributeChanged": ["address", "bytes32", "bytes", "uint256", "uint256"],
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_contracts_compile_with_their_functions(name: str) -> None:
    assert name in contract_names()
    compiled = compile_contract(name)
    assert compiled.bytecode.startswith("0x") and len(compiled.bytecode) > 100
    functions = {e["name"] for e in compiled.abi if e["type"] == "function"}
    assert FUNCTIONS[name] <= functions
    assert compile_contract(name) is compiled  # compiled once per process


def test_registry_has_the_erc1056_signatures() -> None:
    abi = compile_contract("registry").abi
    events = {e["name"]: [i["type"] for i in e["inputs"]] for e in abi if e["type"] == "event"}
    assert events == ERC1056_EVENTS
    functions = {
        e["name"]: [i["type"] for i in e["inputs"]] for e in abi if e["type"] == "function"
    }
    assert functions["setAttribute"] == ["address", "bytes32", "bytes", "uint256"]
    assert functions["addDelegate"] == ["address", "bytes32", "address", "uint256"]
    assert functions["validDelegate"] == ["address", "bytes32", "address"]


@pytest.mark.parametrize("name", ["missing", "../contracts/token", "Token", ""])
def test_unknown_contract_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        contract_source(name)
