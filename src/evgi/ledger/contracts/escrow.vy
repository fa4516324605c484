# pragma version ~=0.4.0
"""
@title evgi escrows
@notice The ledger's `escrow` module (src/evgi/ledger/escrow.py) as an EVM contract: a payer locks
        tokens for one charging session; its operator settles it (payee, fee, refund of the rest,
        the CDR's hash) or refunds it; after the deadline anyone may refund it.
@dev Locked tokens sit in this contract's balance in the token contract, so on this engine
     `balanceOf(symbol, escrow) == total(symbol)`, where the local engine counts them apart.
"""

interface Tokens:
    def lock(symbol: String[12], payer: address, amount: uint256): nonpayable
    def transfer(symbol: String[12], to: address, amount: uint256): nonpayable

event EscrowOpened:
    escrowId: String[64]
    symbol: String[12]
    payer: indexed(address)
    payee: indexed(address)
    operator: indexed(address)
    amount: uint256
    deadline: uint256

event EscrowSettled:
    escrowId: String[64]
    payeeAmount: uint256
    feeAmount: uint256
    feePayee: address
    refund: uint256
    recordHash: bytes32

event EscrowRefunded:
    escrowId: String[64]
    amount: uint256

flag State:
    OPEN
    SETTLED
    REFUNDED

struct Escrow:
    payer: address
    payee: address
    operator: address
    symbol: String[12]
    amount: uint256
    opened: uint256
    openedAt: uint256
    deadline: uint256
    state: State
    payeeAmount: uint256
    feeAmount: uint256
    feePayee: address
    recordHash: bytes32
    closed: uint256

tokens: public(Tokens)
escrows: public(HashMap[String[64], Escrow])
total: public(HashMap[String[12], uint256])


@deploy
def __init__(tokens: address):
    self.tokens = Tokens(tokens)


@external
def open(escrow_id: String[64], symbol: String[12], payee: address, operator: address,
         amount: uint256, timeout: uint256):
    assert amount > 0, "amount must be positive"
    assert timeout > 0, "timeout must be positive"
    assert self.escrows[escrow_id].payer == empty(address), "escrow already exists"
    # Reverts for an unknown token or an insufficient balance, as `token.move` refuses locally.
    extcall self.tokens.lock(symbol, msg.sender, amount)
    deadline: uint256 = block.timestamp + timeout
    self.escrows[escrow_id] = Escrow(
        payer=msg.sender, payee=payee, operator=operator, symbol=symbol, amount=amount,
        opened=block.number, openedAt=block.timestamp, deadline=deadline, state=State.OPEN,
        payeeAmount=0, feeAmount=0, feePayee=empty(address), recordHash=empty(bytes32), closed=0,
    )
    self.total[symbol] += amount
    log EscrowOpened(escrowId=escrow_id, symbol=symbol, payer=msg.sender, payee=payee,
                     operator=operator, amount=amount, deadline=deadline)


@internal
@view
def _require_open(escrow_id: String[64]):
    state: State = self.escrows[escrow_id].state
    assert self.escrows[escrow_id].payer != empty(address), "no such escrow"
    assert state != State.SETTLED, "escrow already settled"
    assert state != State.REFUNDED, "escrow already refunded"


@internal
def _pay(symbol: String[12], to: address, amount: uint256):
    if amount > 0:
        extcall self.tokens.transfer(symbol, to, amount)


@external
def settle(escrow_id: String[64], payee_amount: uint256, fee_amount: uint256, fee_payee: address,
           record_hash: bytes32):
    self._require_open(escrow_id)
    record: Escrow = self.escrows[escrow_id]
    assert msg.sender == record.operator, "only the operator settles"
    assert payee_amount + fee_amount <= record.amount, "escrow holds less"
    refund: uint256 = record.amount - payee_amount - fee_amount
    record.state = State.SETTLED
    record.payeeAmount = payee_amount
    record.feeAmount = fee_amount
    record.feePayee = fee_payee
    record.recordHash = record_hash
    record.closed = block.number
    self.escrows[escrow_id] = record
    self.total[record.symbol] -= record.amount
    self._pay(record.symbol, record.payee, payee_amount)
    self._pay(record.symbol, fee_payee, fee_amount)
    self._pay(record.symbol, record.payer, refund)
    log EscrowSettled(escrowId=escrow_id, payeeAmount=payee_amount, feeAmount=fee_amount,
                      feePayee=fee_payee, refund=refund, recordHash=record_hash)


@external
def refund(escrow_id: String[64]):
    self._require_open(escrow_id)
    record: Escrow = self.escrows[escrow_id]
    assert msg.sender == record.operator or block.timestamp >= record.deadline, \
        "only the operator refunds before the deadline"
    self.escrows[escrow_id].state = State.REFUNDED
    self.escrows[escrow_id].closed = block.number
    self.total[record.symbol] -= record.amount
    self._pay(record.symbol, record.payer, record.amount)
    log EscrowRefunded(escrowId=escrow_id, amount=record.amount)
