# pragma version ~=0.4.0
"""
@title evgi DID registry
@notice ERC-1056 EthereumDIDRegistry: identity owners, delegates and attributes, with the standard
        functions and events, so ethr-did resolvers read it as they read any deployment. It is the
        `did` module of the local engine (src/evgi/ledger/registry.py) on the EVM.
@dev Attributes live in the event log, as ERC-1056 keeps them; `attributeSet` adds one rule of
     the local module: only an attribute that was once set can be revoked. (`value` is a
     reserved word for parameters in Vyper, hence `_value`; the ABI types are ERC-1056's.)
"""

event DIDOwnerChanged:
    identity: indexed(address)
    owner: address
    previousChange: uint256

event DIDDelegateChanged:
    identity: indexed(address)
    delegateType: bytes32
    delegate: address
    validTo: uint256
    previousChange: uint256

event DIDAttributeChanged:
    identity: indexed(address)
    name: bytes32
    value: Bytes[4096]
    validTo: uint256
    previousChange: uint256

owners: public(HashMap[address, address])
delegates: public(HashMap[address, HashMap[bytes32, HashMap[address, uint256]]])
changed: public(HashMap[address, uint256])
attributeSet: public(HashMap[address, HashMap[bytes32, bool]])


@internal
@view
def _identity_owner(identity: address) -> address:
    owner: address = self.owners[identity]
    if owner != empty(address):
        return owner
    return identity


@internal
@view
def _only_owner(identity: address):
    assert msg.sender == self._identity_owner(identity), "bad_actor"


@external
@view
def identityOwner(identity: address) -> address:
    return self._identity_owner(identity)


@external
@view
def validDelegate(identity: address, delegateType: bytes32, delegate: address) -> bool:
    return self.delegates[identity][keccak256(delegateType)][delegate] > block.timestamp


@external
def changeOwner(identity: address, newOwner: address):
    self._only_owner(identity)
    self.owners[identity] = newOwner
    log DIDOwnerChanged(identity=identity, owner=newOwner, previousChange=self.changed[identity])
    self.changed[identity] = block.number


@external
def addDelegate(identity: address, delegateType: bytes32, delegate: address, validity: uint256):
    self._only_owner(identity)
    valid_to: uint256 = block.timestamp + validity
    self.delegates[identity][keccak256(delegateType)][delegate] = valid_to
    log DIDDelegateChanged(identity=identity, delegateType=delegateType, delegate=delegate,
                           validTo=valid_to, previousChange=self.changed[identity])
    self.changed[identity] = block.number


@external
def revokeDelegate(identity: address, delegateType: bytes32, delegate: address):
    self._only_owner(identity)
    self.delegates[identity][keccak256(delegateType)][delegate] = block.timestamp
    log DIDDelegateChanged(identity=identity, delegateType=delegateType, delegate=delegate,
                           validTo=block.timestamp, previousChange=self.changed[identity])
    self.changed[identity] = block.number


@external
def setAttribute(identity: address, name: bytes32, _value: Bytes[4096], validity: uint256):
    self._only_owner(identity)
    self.attributeSet[identity][keccak256(concat(name, _value))] = True
    log DIDAttributeChanged(identity=identity, name=name, value=_value,
                            validTo=block.timestamp + validity,
                            previousChange=self.changed[identity])
    self.changed[identity] = block.number


@external
def revokeAttribute(identity: address, name: bytes32, _value: Bytes[4096]):
    self._only_owner(identity)
    assert self.attributeSet[identity][keccak256(concat(name, _value))], "no such attribute"
    log DIDAttributeChanged(identity=identity, name=name, value=_value, validTo=0,
                            previousChange=self.changed[identity])
    self.changed[identity] = block.number
