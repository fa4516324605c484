# pragma version ~=0.4.0
"""
@title evgi anchors
@notice The ledger's `anchor` module (src/evgi/ledger/anchors.py) as an EVM contract: a hash
        anchored once, with its kind and metadata (canonical JSON), and who anchored it when.
"""

event Anchored:
    hash: indexed(bytes32)
    kind: String[64]

struct Anchor:
    by: address
    blockNumber: uint256
    timestamp: uint256
    kind: String[64]
    meta: String[2048]

anchors: public(HashMap[bytes32, Anchor])


@external
def put(hash: bytes32, kind: String[64], meta: String[2048]):
    assert self.anchors[hash].by == empty(address), "already anchored"
    self.anchors[hash] = Anchor(by=msg.sender, blockNumber=block.number,
                                timestamp=block.timestamp, kind=kind, meta=meta)
    log Anchored(hash=hash, kind=kind)
