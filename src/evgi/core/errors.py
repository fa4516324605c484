"""Error types shared by every layer, so callers can map them to each protocol's own errors."""

from __future__ import annotations


class EvgiError(Exception):
    """Base of every error evgi raises on purpose; `code` is stable for machines to match."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(EvgiError):
    code = "invalid"


class SignatureError(EvgiError):
    code = "bad_signature"


class NonceError(EvgiError):
    """A transaction whose nonce is not the sender's next one: a replay or a gap."""

    code = "bad_nonce"


class NotFoundError(EvgiError):
    code = "not_found"


class PermissionDenied(EvgiError):
    code = "forbidden"


class ExecutionError(EvgiError):
    """A well-formed transaction that the state machine refused (it is kept, marked failed)."""

    code = "execution_failed"


class IntegrityError(EvgiError):
    """Stored history that no longer matches its hashes, signatures or derived state."""

    code = "integrity"

    def __init__(self, message: str, block: int | None = None) -> None:
        super().__init__(message)
        self.block = block


class ConfigError(EvgiError):
    code = "config"
