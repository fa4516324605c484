# pragma version ~=0.4.0
"""
@title evgi tokens
@notice The ledger's `token` module (src/evgi/ledger/token.py) as an EVM contract, so the `evm`
        engine keeps the local engine's semantics: every symbol in one contract, keyed by symbol
        as the local module keys its state; trust anchors create tokens, a token's admin grants
        issuers, issuers mint and burn (from their own balance), holders transfer, all in integer
        minor units.
@dev The escrow contract named once by the deployer may lock a payer's funds into its own
     balance: the payer signed the escrow call, as the local `escrow.open` debits its sender.
"""

event TokenCreated:
    symbol: String[12]
    currency: String[3]

event IssuerGranted:
    symbol: String[12]
    issuer: indexed(address)

# Mint has sender = empty(address), burn has receiver = empty(address), as in ERC-20.
event Transfer:
    symbol: String[12]
    sender: indexed(address)
    receiver: indexed(address)
    amount: uint256

struct Meta:
    currency: String[3]
    decimals: uint8
    admin: address

isTrustAnchor: public(HashMap[address, bool])
escrow: public(address)
deployer: immutable(address)

tokens: public(HashMap[String[12], Meta])
isIssuer: public(HashMap[String[12], HashMap[address, bool]])
balanceOf: public(HashMap[String[12], HashMap[address, uint256]])
totalSupply: public(HashMap[String[12], uint256])


@deploy
def __init__(trust_anchors: DynArray[address, 16]):
    # The genesis trust anchors of the local engine.
    for anchor: address in trust_anchors:
        self.isTrustAnchor[anchor] = True
    deployer = msg.sender


@external
def set_escrow(escrow: address):
    assert msg.sender == deployer, "only the deployer names the escrow contract"
    assert self.escrow == empty(address), "the escrow contract is already named"
    self.escrow = escrow


@external
def create(symbol: String[12], currency: String[3], decimals: uint8):
    # The engine checks the symbol pattern and the currency before signing, as the local module
    # validates its arguments before it runs.
    assert self.isTrustAnchor[msg.sender], "only a trust anchor creates tokens"
    assert self.tokens[symbol].admin == empty(address), "token already exists"
    self.tokens[symbol] = Meta(currency=currency, decimals=decimals, admin=msg.sender)
    log TokenCreated(symbol=symbol, currency=currency)


@external
def grant_issuer(symbol: String[12], issuer: address):
    admin: address = self.tokens[symbol].admin
    assert admin != empty(address), "no such token"
    assert msg.sender == admin, "only the admin grants issuers"
    self.isIssuer[symbol][issuer] = True
    log IssuerGranted(symbol=symbol, issuer=issuer)


@internal
def _debit(symbol: String[12], source: address, amount: uint256):
    assert amount > 0, "amount must be positive"
    assert self.balanceOf[symbol][source] >= amount, "insufficient balance"
    self.balanceOf[symbol][source] -= amount


@internal
def _credit(symbol: String[12], target: address, amount: uint256):
    # Checked arithmetic reverts on overflow, where the local engine's integers cannot overflow.
    assert amount > 0, "amount must be positive"
    self.balanceOf[symbol][target] += amount


@internal
@view
def _require_token(symbol: String[12]):
    assert self.tokens[symbol].admin != empty(address), "no such token"


@external
def mint(symbol: String[12], to: address, amount: uint256):
    self._require_token(symbol)
    assert self.isIssuer[symbol][msg.sender], "not an issuer"
    self._credit(symbol, to, amount)
    self.totalSupply[symbol] += amount
    log Transfer(symbol=symbol, sender=empty(address), receiver=to, amount=amount)


@external
def burn(symbol: String[12], amount: uint256):
    self._require_token(symbol)
    assert self.isIssuer[symbol][msg.sender], "not an issuer"
    self._debit(symbol, msg.sender, amount)
    self.totalSupply[symbol] -= amount
    log Transfer(symbol=symbol, sender=msg.sender, receiver=empty(address), amount=amount)


@external
def transfer(symbol: String[12], to: address, amount: uint256):
    # No zero-address or self-transfer rule: the local module has none, and the engines agree.
    self._require_token(symbol)
    self._debit(symbol, msg.sender, amount)
    self._credit(symbol, to, amount)
    log Transfer(symbol=symbol, sender=msg.sender, receiver=to, amount=amount)


@external
def lock(symbol: String[12], payer: address, amount: uint256):
    # Only the escrow contract: it moves what its caller, the payer, asked to lock.
    assert msg.sender == self.escrow and msg.sender != empty(address), "only the escrow locks"
    self._require_token(symbol)
    self._debit(symbol, payer, amount)
    self._credit(symbol, msg.sender, amount)
    log Transfer(symbol=symbol, sender=payer, receiver=msg.sender, amount=amount)
