"""Local authorization: the list a CSMS sends down and the cache of tokens it accepted.

This is what lets a station decide on a token while offline, and skip the round trip online
when `LocalPreAuthorize` is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Verdict:
    """The answer to a token: its status and the group it belongs to (1.6: its parent id tag),
    which may hold a reservation on its behalf."""

    status: str
    group: str | None = None


class ListUpdate(StrEnum):
    """SendLocalList outcomes shared by both versions."""

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    VERSION_MISMATCH = "VersionMismatch"


class LocalAuthorization:
    def __init__(self, max_entries: int = 1000) -> None:
        self.max_entries = max_entries
        self.version = 0
        self._list: dict[str, str] = {}
        self._cache: dict[str, str] = {}

    @staticmethod
    def _key(token: str) -> str:
        return token.upper()  # id tokens are case-insensitive in every OCPP version

    def lookup(self, token: str, use_list: bool = True, use_cache: bool = True) -> str | None:
        """The local verdict on a token (the list overrides the cache), None if unknown."""
        key = self._key(token)
        if use_list and key in self._list:
            return self._list[key]
        if use_cache:
            return self._cache.get(key)
        return None

    def remember(self, token: str, status: str) -> None:
        self._cache[self._key(token)] = status

    def clear_cache(self) -> None:
        self._cache.clear()

    def update(self, version: int, full: bool, entries: dict[str, str | None]) -> ListUpdate:
        """Apply a SendLocalList: a full list replaces, a differential one edits (None deletes)."""
        if not full and version <= self.version:
            return ListUpdate.VERSION_MISMATCH
        merged = {} if full else dict(self._list)
        for token, status in entries.items():
            if status is None:
                merged.pop(self._key(token), None)
            else:
                merged[self._key(token)] = status
        if len(merged) > self.max_entries:
            return ListUpdate.FAILED
        self._list = merged
        self.version = version
        return ListUpdate.ACCEPTED

    def __len__(self) -> int:
        return len(self._list)
