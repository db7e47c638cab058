"""The API's door: what an unauthenticated or oversized request costs the hub before any route runs.

- A request to a personal-data route (`/v1/…`) that carries a body is refused 401 before its body is
  read when its bearer token does not verify: a caller without a valid token makes the hub parse
  nothing.
- A body larger than `max_body_bytes` (64 KiB: a quote is a few hundred bytes) is refused 413, by its
  `Content-Length` or, streamed without one, as soon as it grows past the limit.
- Requests refused for want of a valid token are not audited one row each (a flood of them would fill
  the audit log): `RefusalTally` counts them per minute and resource, and writes one `read_audit` row per
  minute and resource that says how many (`reghub_api_unauthenticated_total` counts them as they come).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.tokens import TokenRefused, TokenVerifier
from sinks import read_audit
from sinks.read_audit import AuditEntry, anonymous_refusal

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RefusalTally:
    """Requests refused without a valid token, counted per (minute, resource) until written."""

    def __init__(
        self, engine: AsyncEngine, clock: Callable[[], datetime], metrics: CollectorRegistry
    ):
        self.engine = engine
        self.clock = clock
        self.counts: dict[tuple[datetime, str], int] = {}
        self.counter = Counter(
            "reghub_api_unauthenticated",
            "Requests refused 401 for want of a valid token, by resource",
            ["resource"],
            registry=metrics,
        )

    def add(self, resource: str) -> None:
        minute = self.clock().replace(second=0, microsecond=0)
        self.counts[(minute, resource)] = self.counts.get((minute, resource), 0) + 1
        self.counter.labels(resource).inc()

    async def flush(self, everything: bool = False) -> int:
        """Write one audit row per past minute and resource (every minute when `everything`, at
        shutdown); returns the rows written. A minute not written (register down) is kept."""
        now = self.clock().replace(second=0, microsecond=0)
        due = {k: n for k, n in self.counts.items() if everything or k[0] < now}
        if not due:
            return 0
        try:
            async with self.engine.begin() as conn:
                for (minute, resource), n in sorted(due.items()):
                    await read_audit.record(conn, _aggregate(minute, resource, n))
        except SQLAlchemyError as exc:
            log.warning("audit: %d minutes of refused requests not written yet: %s", len(due), exc)
            return 0
        for key in due:
            del self.counts[key]
        return len(due)

    async def run(self, every: float = 15.0) -> None:
        """Write the finished minutes every `every` seconds until cancelled, then the rest."""
        try:
            while True:
                await asyncio.sleep(every)
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush(everything=True))


def _aggregate(minute: datetime, resource: str, n: int) -> AuditEntry:
    reason = f"{n} requests without a valid token in the minute from {minute.isoformat()}"
    return anonymous_refusal(minute, resource, 401, reason)


class Gate:
    """ASGI middleware: body limits for every request, token first for personal-data bodies."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        tally: RefusalTally,
        resource_of: Callable[[str], str | None],
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.tally = tally
        self.resource_of = resource_of
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _answer(send, 413, f"the request body is over {self.max_body_bytes} bytes")
            return
        resource = self.resource_of(scope["path"])
        if resource is not None and scope["method"] in ("POST", "PUT", "PATCH"):
            authorization = headers.get(b"authorization")
            try:
                await self.verifier.principal(
                    authorization.decode("latin-1") if authorization else None
                )
            except TokenRefused as exc:
                self.tally.add(resource)
                await _answer(send, 401, exc.reason, {"www-authenticate": "Bearer"})
                return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_capped(receive)
            if body is None:
                await _answer(send, 413, f"the request body is over {self.max_body_bytes} bytes")
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_capped(self, receive: Receive) -> bytes | None:
        """A streamed body (no Content-Length) read whole, or None once it is over the limit."""
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # the client went away: the app sees an empty body
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body read already, then waits as the original would."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(
    send: Send, status: int, reason: str, extra: dict[str, str] | None = None
) -> None:
    body = orjson.dumps({"detail": reason})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
