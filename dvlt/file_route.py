"""Gradio's file URLs answer 404 for every file they do not serve, so a session's links read as gone once its
files are removed, and the status never tells whether some other server file exists.

Gradio's `/gradio_api/file=PATH` route (and its older `/gradio_api/file/PATH` form) answers 403 "File not
allowed: PATH" both for a file it refuses to serve and for one that no longer exists. This ASGI middleware turns
each such answer into the same plain 404 "Not Found", without the path; it is added through
`launch(app_kwargs={"middleware": file_route_middleware()})` so every launch of the app gets it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware import Middleware

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")  # Gradio's file route, current and older spelling
REFUSED = (403,)  # what Gradio answers for a file it will not or cannot serve ("File not allowed")
NOT_FOUND = b"Not Found"


def is_file_request(scope: MutableMapping[str, Any]) -> bool:
    """True for an HTTP request to one of Gradio's file routes (below the app's root path, if any)."""
    if scope["type"] != "http":
        return False
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path.startswith(FILE_ROUTES)


class RefusedFilesNotFound:
    """ASGI middleware: a file request Gradio refuses gets a plain 404 with no path in its body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if not is_file_request(scope):
            await self.app(scope, receive, send)
            return
        replaced = False  # the inner answer was a refusal: its body is dropped

        async def send_or_replace(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] in REFUSED:
                replaced = True
                await send_not_found(send)
            elif not replaced:
                await send(message)

        await self.app(scope, receive, send_or_replace)


async def send_not_found(send: Send) -> None:
    """A plain-text 404 "Not Found" (the server sends no body to a HEAD request, as for any response)."""
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(NOT_FOUND)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": NOT_FOUND})


def file_route_middleware() -> list[Middleware]:
    """The middleware list for `launch(app_kwargs={"middleware": ...})`: 404 for every file URL Gradio refuses."""
    return [Middleware(RefusedFilesNotFound)]
