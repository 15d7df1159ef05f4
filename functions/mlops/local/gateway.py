"""A local stand-in for API Gateway (HTTP API): HTTP requests in, payload format 2.0 events out.

Each request is matched against `mlops.shared.routes.ROUTES`, turned into the event API Gateway
would send, handed to the same handler code the Lambda runs, and its response written
back. Unknown routes answer 404 and handler crashes 500, as API Gateway does.

Locally it also serves static files under ``/reports/`` (the monitoring reports and history
page, read from the report bucket by the stack), which on AWS are read with
`mlops reports open` or from S3 directly: that route is not part of the deployed API.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from mlops.local.invoke import LocalLambdas
from mlops.shared.routes import Route, compile_routes, match

MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
STATIC_PREFIX = "/reports"

# A static file source: the request path -> (status, headers, body).
StaticFiles = Callable[[str], tuple[int, dict[str, str], bytes]]


def http_api_event(
    route: Route,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    path_parameters: dict[str, str],
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for one request."""
    now = datetime.now(UTC)
    lowered = {k.lower(): v for k, v in headers.items()}
    text_types = ("application/json", "text/", "application/x-www-form-urlencoded")
    is_text = not body or any(t in lowered.get("content-type", "application/json") for t in text_types)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {"iam": {"accessKey": "LOCAL", "accountId": "123456789012", "userArn": "local"}},
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if query:
        event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
    if path_parameters:
        # API Gateway passes path parameters decoded and the raw path as sent.
        event["pathParameters"] = {k: unquote(v) for k, v in path_parameters.items()}
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if is_text else base64.b64encode(body).decode()
    return event


class LocalGateway:
    def __init__(
        self, lambdas: LocalLambdas, host: str = "127.0.0.1", port: int = 0, static: StaticFiles | None = None
    ) -> None:
        self.lambdas = lambdas
        self.static = static
        self.host = host
        self.routes = compile_routes()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # requests are logged by handlers
                return

            def _serve(self) -> None:
                gateway.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="local-gateway", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        split = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._write(
                req, 413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}'
            )
            return
        body = req.rfile.read(length) if length else b""
        if self.static is not None and req.command == "GET" and _is_static(split.path):
            self._write(req, *self.static(split.path))
            return
        found = match(self.routes, req.command, split.path)
        if found is None:
            self._write(req, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        route, params = found
        event = http_api_event(
            route,
            req.command,
            split.path,
            split.query,
            dict(req.headers.items()),
            body,
            params,
            source_ip=req.client_address[0],
        )
        try:
            response = self.lambdas.invoke(route.function, event)
        except Exception:  # API Gateway answers 500 when the integration fails
            import traceback

            traceback.print_exc()
            self._write(
                req, 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
            )
            return
        status, headers, payload = _response_parts(response)
        headers["x-local-latency-ms"] = f"{(time.perf_counter() - started) * 1000:.2f}"
        self._write(req, status, headers, payload)

    @staticmethod
    def _write(req: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
        req.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection"):
                req.send_header(k, v)
        req.send_header("Content-Length", str(len(payload)))
        req.end_headers()
        req.wfile.write(payload)


def _is_static(path: str) -> bool:
    return path == STATIC_PREFIX or path.startswith(STATIC_PREFIX + "/")


def _response_parts(response: Any) -> tuple[int, dict[str, str], bytes]:
    """Apply API Gateway's rules for a payload 2.0 Lambda response."""
    if not isinstance(response, dict) or "statusCode" not in response:
        # A bare value is treated as a 200 JSON body.
        return 200, {"content-type": "application/json"}, json.dumps(response).encode()
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode("utf-8")
    return int(response["statusCode"]), headers, payload
