"""Failed logins throttled per client, for the chat UI's login form.

Gradio checks a password as fast as it is sent (100 wrong ones took 1.07 s). Here each client (its address as the
server sees it) gets ``free`` failures, then must wait before each further try: 1 s, 2 s, 4 s ... up to ``cap``;
a try too early is refused with HTTP 429 and ``Retry-After`` without checking the password, and a success clears
the count. Behind a reverse proxy every user has the proxy's address, so the proxy should limit logins itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# Clients remembered at most; the oldest are forgotten first (a flood of addresses cannot exhaust memory).
MAX_CLIENTS = 10_000


@dataclass
class LoginThrottle:
    free: int = 5
    base: float = 1.0
    cap: float = 300.0
    clock: Callable[[], float] = time.monotonic
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)
    """client -> (failures in a row, when the last one was)."""

    def retry_after(self, client: str) -> float:
        """Seconds ``client`` must still wait before its next try (0: it may try now)."""
        count, last = self.failures.get(client, (0, 0.0))
        if count < self.free:
            return 0.0
        wait = min(self.base * 2 ** (count - self.free), self.cap)
        return max(0.0, last + wait - self.clock())

    def failed(self, client: str) -> None:
        count, _ = self.failures.pop(client, (0, 0.0))
        self.failures[client] = (count + 1, self.clock())
        while len(self.failures) > MAX_CLIENTS:
            del self.failures[next(iter(self.failures))]

    def succeeded(self, client: str) -> None:
        self.failures.pop(client, None)


class LoginThrottleMiddleware:
    """ASGI middleware applying a ``LoginThrottle`` to ``POST .../login`` (Gradio's login route)."""

    def __init__(self, app: ASGIApp, throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")).rstrip("/")
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.endswith("/login"):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.retry_after(client)
        if wait > 0:
            await _too_many(send, wait)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if status == 200:
                    self.throttle.succeeded(client)
                elif 400 <= status < 500:
                    self.throttle.failed(client)
            await send(message)

        await self.app(scope, receive, watch)


async def _too_many(send: Send, wait: float) -> None:
    seconds = max(1, int(wait + 0.999))
    body = json.dumps({"detail": f"Too many failed logins: try again in {seconds} s."}).encode()
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", str(seconds).encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
