# pragma version ~=0.4.0
"""
@title evgi token
@notice One token symbol of the ledger's `token` module (src/evgi/ledger/token.py) as an EVM
        contract, so the `evm` engine keeps the local engine's semantics: integer minor units,
        an admin who grants issuers, issuers who mint and burn, holders who transfer.
@dev One deployment per symbol: the local engine keys state by symbol, here the address is the key.
"""

# Same shape as ERC-20's event, so wallets and explorers read balance moves without an adapter;
# mint has sender = empty(address), burn has receiver = empty(address).
event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event IssuerGranted:
    issuer: indexed(address)

# Token metadata as `token.create` stores it; the engine checks the symbol pattern and the
# currency before deploying, as the local module does before writing.
symbol: public(String[12])
currency: public(String[3])
decimals: public(uint8)
admin: public(address)

isIssuer: public(HashMap[address, bool])
balanceOf: public(HashMap[address, uint256])
totalSupply: public(uint256)


@deploy
def __init__(_symbol: String[12], _currency: String[3], _decimals: uint8):
    # The deployer plays the role of the trust anchor that calls `token.create`.
    self.symbol = _symbol
    self.currency = _currency
    self.decimals = _decimals
    self.admin = msg.sender


@external
def grant_issuer(issuer: address):
    assert msg.sender == self.admin, "only the admin grants issuers"
    self.isIssuer[issuer] = True
    log IssuerGranted(issuer=issuer)


@external
def mint(to: address, amount: uint256):
    assert self.isIssuer[msg.sender], "not an issuer"
    # The local module's amounts are strictly positive (pydantic gt=0); keep that rule here.
    assert amount > 0, "amount must be positive"
    # Checked arithmetic reverts on overflow, where the local engine's integers cannot overflow.
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def burn(amount: uint256):
    # Issuers burn only from their own balance, like the local `token.burn`.
    assert self.isIssuer[msg.sender], "not an issuer"
    assert amount > 0, "amount must be positive"
    assert self.balanceOf[msg.sender] >= amount, "insufficient balance"
    self.balanceOf[msg.sender] -= amount
    self.totalSupply -= amount
    log Transfer(sender=msg.sender, receiver=empty(address), value=amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    # No zero-address or self-transfer rule: the local module has none, and the engines must agree.
    assert amount > 0, "amount must be positive"
    assert self.balanceOf[msg.sender] >= amount, "insufficient balance"
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=msg.sender, receiver=to, value=amount)
    return True
