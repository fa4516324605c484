"""One station's OCPP-J link: frames in and out, one outstanding call in each direction.

Frames are built and parsed by the `ocpp` library (`Call`, `CallResult`, `CallError`,
`unpack`); this module adds what its `ChargePoint.start` loop leaves out for a server facing
untrusted stations: every bad frame gets the CALLERROR its version prescribes instead of being
dropped, an action without a handler is always refused (the library drops such 2.1 calls), a
second call while one is in flight and a reused message id are refused, and a station's
retransmitted call gets the answer it was first given. Calls run as tasks so a handler may
itself call the station while the receive loop keeps reading answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import (
    InternalError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
)
from ocpp.messages import Call, CallError, CallResult, MessageType, unpack
from websockets.exceptions import ConnectionClosed

from evgi.core.errors import ValidationError
from evgi.csms.errors import StationCallError, StationOffline, StationTimeout
from evgi.csms.protocol import CallFailure, Dialect
from evgi.csms.schemas import Schemas

log = structlog.get_logger(__name__)

Route = Callable[..., Awaitable[Any]]
MAX_MESSAGE_ID = 36  # OCPP-J: a message id is at most 36 characters
# Key-sorted JSON of anything `json.loads` gives, NaN included (the frames' parser accepts it).
_sorted_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


@functools.lru_cache(maxsize=8192)
def _snake_key(key: str) -> str:
    converted: dict[str, None] = camel_to_snake_case({key: None})
    return next(iter(converted))


@functools.lru_cache(maxsize=8192)
def _camel_key(key: str) -> str:
    converted: dict[str, None] = snake_to_camel_case({key: None})
    return next(iter(converted))


def _rename_keys(value: Any, rename: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {rename(k): _rename_keys(v, rename) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename_keys(v, rename) for v in value]
    return value


def to_snake_case(payload: Any) -> Any:
    """The library's camelCase -> snake_case key mapping, memoized per key (its regular
    expressions would otherwise cost more than the rest of a call's handling)."""
    return _rename_keys(payload, _snake_key)


def to_camel_case(payload: Any) -> Any:
    """The library's snake_case -> camelCase key mapping, memoized per key."""
    return _rename_keys(payload, _camel_key)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def wire_body(payload: Any) -> Any:
    """A `call` or `call_result` dataclass as the JSON body it has on the wire: the library's
    `serialize_as_dict`, `remove_nones` and camelCase keys in one pass, without `asdict`'s deep
    copy (a body is built for every answer)."""
    if dataclasses.is_dataclass(payload) and not isinstance(payload, type):
        body = {}
        for name in _field_names(type(payload)):
            value = getattr(payload, name)
            if value is not None:
                body[_camel_key(name)] = wire_body(value)
        return body
    if isinstance(payload, dict):
        return {_camel_key(k): wire_body(v) for k, v in payload.items() if v is not None}
    if isinstance(payload, list):
        return [wire_body(v) for v in payload if v is not None]
    return payload


class Socket(Protocol):
    """The part of a WebSocket connection the link uses."""

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    def __aiter__(self) -> Any: ...


class CallHandler(Protocol):
    """What answers a station's calls: a version's `ChargePoint`."""

    def route(self, action: str) -> Route | None: ...

    def admit(self, action: str) -> None:
        """Raise an `OCPPError` to refuse a call the station may not make now."""

    def answer_sent(self) -> None:
        """Start what a handler deferred until its answer left (e.g. CertificateSigned)."""


def call_fingerprint(action: str, payload: Any) -> bytes:
    """What tells a retransmitted call from another call under the same message id: a digest
    of the action and the payload's key-sorted JSON, so key order and spacing do not count."""
    text = _sorted_json([action, payload])
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


@dataclass(frozen=True)
class _Answer:
    fingerprint: bytes  # of the call answered; the call itself is not kept (~2 KB each)
    frame: str


class AnswerMemory:
    """The latest answers given to one station, kept across its reconnections."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._answers: OrderedDict[str, _Answer] = OrderedDict()

    def get(self, unique_id: str) -> _Answer | None:
        return self._answers.get(unique_id)

    def put(self, unique_id: str, fingerprint: bytes, frame: str) -> None:
        self._answers[unique_id] = _Answer(fingerprint, frame)
        self._answers.move_to_end(unique_id)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)


class OcppLink:
    def __init__(
        self,
        station_id: str,
        dialect: Dialect,
        socket: Socket,
        handler: CallHandler,
        schemas: Schemas,
        answers: AnswerMemory,
        call_timeout: float,
    ) -> None:
        self.station_id = station_id
        self.dialect = dialect
        self._socket = socket
        self._handler = handler
        self._schemas = schemas
        self._answers = answers
        self._call_timeout = call_timeout
        self._incoming: asyncio.Task[None] | None = None
        self._incoming_id: str | None = None
        self._outgoing: tuple[str, asyncio.Future[CallResult | CallError]] | None = None
        self._call_lock = asyncio.Lock()
        self._closed = False
        self._log = log.bind(station=station_id, version=dialect.version.value)

    async def close(self, code: int, reason: str) -> None:
        await self._socket.close(code, reason)

    async def serve(self) -> None:
        """Read frames until the socket closes; a call being answered is finished first."""
        try:
            async for frame in self._socket:
                await self._on_frame(frame)
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            if self._outgoing is not None and not self._outgoing[1].done():
                self._outgoing[1].set_exception(StationOffline(f"{self.station_id} disconnected"))
            if self._incoming is not None:
                await asyncio.gather(self._incoming, return_exceptions=True)

    # incoming frames

    async def _on_frame(self, frame: str | bytes) -> None:
        try:
            message = unpack(frame)
        except OCPPError as exc:
            await self._refuse_frame(frame, exc)
            return
        if isinstance(message, Call):
            await self._on_call(message)
            return
        outgoing = self._outgoing
        if outgoing is not None and message.unique_id == outgoing[0] and not outgoing[1].done():
            outgoing[1].set_result(message)
        else:
            self._log.warning("answer to no pending call", message_id=str(message.unique_id))

    async def _refuse_frame(self, frame: str | bytes, exc: OCPPError) -> None:
        """Answer a frame the library could not unpack, with the id it carries if readable."""
        unique_id = "-1"
        type_id: object = None
        try:
            parsed = json.loads(frame)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, list) and parsed:
            type_id = parsed[0]
            if len(parsed) > 1 and isinstance(parsed[1], str):
                unique_id = parsed[1]
        if type_id in self.dialect.unanswered_types:
            self._log.info("message type ignored", message_type=type_id)
            return
        known = type_id in (MessageType.Call, MessageType.CallResult, MessageType.CallError)
        code = (
            self.dialect.rpc_framework_error
            if known or not isinstance(type_id, int)
            else self.dialect.message_type_not_supported
        )
        self._log.warning("bad frame", code=code, cause=exc.details.get("cause", exc.description))
        await self._send(CallError(unique_id, code, exc.description, exc.details).to_json())

    async def _on_call(self, call: Call) -> None:
        unique_id, action = call.unique_id, call.action
        if not (isinstance(unique_id, str) and 0 < len(unique_id) <= MAX_MESSAGE_ID) or not (
            isinstance(action, str)
        ):
            failure = CallFailure(
                self.dialect.rpc_framework_error,
                "message id must be a string of 1 to 36 characters and action a string",
            )
            safe_id = unique_id if isinstance(unique_id, str) else "-1"
            await self._send(
                CallError(safe_id, failure.code, failure.description, failure.details).to_json()
            )
            return
        refusal = self._rpc_violation(call)
        if refusal is not None:
            self._log.warning("call refused", message_id=unique_id, reason=refusal)
            failure = CallFailure(self.dialect.rpc_rule_violation, refusal)
            await self._send(call.create_call_error(failure).to_json())
            return
        earlier = self._answers.get(unique_id)
        if earlier is not None:
            # The station sent the same call again, having missed our answer.
            await self._send(earlier.frame)
            return
        self._incoming_id = unique_id
        self._incoming = asyncio.create_task(self._answer(call))

    def _rpc_violation(self, call: Call) -> str | None:
        if self._incoming_id is not None:
            if call.unique_id == self._incoming_id:
                return "a call with this message id is being answered"
            return "one call at a time: the previous call has not been answered yet"
        earlier = self._answers.get(call.unique_id)
        if earlier is not None and earlier.fingerprint != call_fingerprint(
            call.action, call.payload
        ):
            return "message id already used for another call"
        return None

    async def _answer(self, call: Call) -> None:
        try:
            frame = await self._result_frame(call)
            self._answers.put(call.unique_id, call_fingerprint(call.action, call.payload), frame)
        finally:
            # The call is answered once the answer leaves: the station may send its next call.
            self._incoming_id = None
        await self._send(frame)
        self._handler.answer_sent()

    async def _result_frame(self, call: Call) -> str:
        version = self.dialect.version
        try:
            route = self._handler.route(call.action)
            if route is None:
                raise self._unhandled(call.action)
            self._schemas.check(version, call.action, "request", call.payload)
            self._handler.admit(call.action)
            result = await route(**to_snake_case(call.payload))
        except OCPPError as exc:
            self._log.info(
                "call refused", action=call.action, code=exc.code, reason=exc.description
            )
            return str(call.create_call_error(exc).to_json())
        except Exception:
            self._log.exception("call failed", action=call.action)
            return str(call.create_call_error(InternalError()).to_json())
        body = wire_body(result)
        try:
            self._schemas.check(version, call.action, "response", body)
        except OCPPError:
            self._log.exception("answer breaks the schema", action=call.action, answer=body)
            return str(call.create_call_error(InternalError()).to_json())
        return str(CallResult(call.unique_id, body).to_json())

    def _unhandled(self, action: str) -> OCPPError:
        if action in self.dialect.actions:
            return NotImplementedError(details={"cause": f"{action} is not implemented"})
        return NotSupportedError(
            details={"cause": f"{action} is not an action of {self.dialect.version.value}"}
        )

    async def _send(self, frame: str) -> None:
        try:
            await self._socket.send(frame)
        except ConnectionClosed:
            self._log.info("answer not sent: connection closed")

    # outgoing calls

    async def call(self, payload: Any, timeout: float | None = None) -> Any:
        """Send one of the version's `call` dataclasses; return the station's `call_result`.

        Raises `ValidationError` for a request that breaks the version's schema (nothing is
        sent), `StationOffline`, `StationTimeout` or `StationCallError` (a CALLERROR answer,
        or an answer that breaks the schema).
        """
        action = type(payload).__name__
        body = wire_body(payload)
        try:
            self._schemas.check(self.dialect.version, action, "request", body)
        except OCPPError as exc:
            raise ValidationError(
                f"invalid {self.dialect.version.value} {action} request: {exc.description}"
            ) from exc
        async with self._call_lock:
            if self._closed:
                raise StationOffline(f"station {self.station_id} is not connected")
            call = Call(str(uuid.uuid4()), action, body)
            future: asyncio.Future[CallResult | CallError] = (
                asyncio.get_running_loop().create_future()
            )
            self._outgoing = (call.unique_id, future)
            try:
                await self._socket.send(call.to_json())
                answer = await asyncio.wait_for(future, timeout or self._call_timeout)
            except ConnectionClosed as exc:
                raise StationOffline(f"station {self.station_id} disconnected") from exc
            except TimeoutError as exc:
                raise StationTimeout(
                    f"station {self.station_id} did not answer {action} in time"
                ) from exc
            finally:
                self._outgoing = None
        if isinstance(answer, CallError):
            raise StationCallError(
                str(answer.error_code), str(answer.error_description), answer.error_details
            )
        try:
            self._schemas.check(self.dialect.version, action, "response", answer.payload)
        except OCPPError as exc:
            raise StationCallError(
                exc.code, f"invalid {action} answer: {exc.description}", exc.details
            ) from exc
        result_type = getattr(self.dialect.call_result, action)
        return result_type(**to_snake_case(answer.payload))
