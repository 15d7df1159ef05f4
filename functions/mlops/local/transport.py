"""The local stack's own AWS calls, handed to the moto server's application without a socket.

Every handler, the alarm evaluator and the demo run in the same process as the moto server.
Over HTTP each of their calls opened a TCP connection (moto's server closes every connection
after one answer) and a server thread, and parsed the request and the answer twice: a third of
the demo's CPU time for tens of thousands of small calls. Here a botocore ``before-send`` hook
passes a request addressed to the server's endpoint to the same WSGI application the server
runs, over the same moto backends, and returns its answer. The request is the one botocore
built and signed, and the application dispatches it exactly as the server would; only the
socket is left out. Processes outside the stack (the CLI with ``--endpoint-url``, curl) still
reach the server over HTTP; a request for any other endpoint is sent as usual.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder, run_wsgi_app

logger = logging.getLogger(__name__)


class _Body(io.BytesIO):
    """What botocore reads an answer from: ``read`` for streaming bodies, ``stream`` otherwise."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(1 << 16):
            yield chunk


def _service_app(service: Any) -> Any:
    """moto's application for one service, answering an error as the server does (a 500), not with
    a debugger's traceback."""
    app = create_backend_app(service)
    app.debug = False
    return app


class _Dispatcher(DomainDispatcherApplication):
    """moto's server application, remembering which backend serves a host: moto finds it by
    listing its own package folder, once per request."""

    def __init__(self) -> None:
        super().__init__(_service_app)
        self._backends: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


class InProcessMoto:
    """A ``before-send`` hook answering requests for `endpoint` from moto's server application."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.app = _Dispatcher()

    def handles(self, url: str) -> bool:
        return url == self.endpoint or url.startswith(self.endpoint + "/")

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if not self.handles(request.url):
            return None  # botocore sends it
        parts = urlsplit(request.url)
        headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        environ = EnvironBuilder(
            path=parts.path or "/",
            base_url=self.endpoint,
            query_string=parts.query,
            method=request.method,
            headers=headers,
            data=body or b"",
        ).get_environ()
        # As moto's request handler does: S3 metadata names keep their underscores.
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = {
            environ_key_for_header(k): k for k, _ in headers if should_preserve_original_header_name(k)
        }
        try:
            answer, status, response_headers = run_wsgi_app(self.app, environ, buffered=True)
            try:
                content = b"".join(answer)
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()
        except Exception:  # what the server's request handler answers when the application fails
            logger.exception("the AWS stand-in failed on %s %s", request.method, request.url)
            status, response_headers, content = "500 INTERNAL SERVER ERROR", Headers(), b""
        return AWSResponse(
            request.url, int(status.split(" ", 1)[0]), dict(response_headers.items()), _Body(content)
        )


def in_process_session(endpoint: str) -> botocore.session.Session:
    """A botocore session whose clients answer requests for `endpoint` in-process."""
    session = botocore.session.get_session()
    session.register("before-send", InProcessMoto(endpoint))
    return session
