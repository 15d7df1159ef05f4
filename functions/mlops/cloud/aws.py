"""AWS SDK clients, created once per process and shared (Lambda containers, CLI, local stack).

The clients are botocore's, made by one botocore session: they are what boto3 would return,
without importing boto3's resource layer, which nothing here uses and every cold start paid for.
The SDK reads AWS_ENDPOINT_URL itself, so pointing everything at a moto server is one
variable. For a loopback endpoint without credentials, dummy ones are used: moto
accepts any, and a developer should not need an AWS account to try the project.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlparse

import botocore.session
from botocore.config import Config

_LOCK = threading.Lock()
_CLIENTS: dict[tuple[str, str | None, str | None, int], Any] = {}
# One session for every client: each new session loads the endpoint rules and registers
# its handlers again, which made every extra client cost tens of milliseconds of cold start.
_SESSION: list[botocore.session.Session] = []
_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=30)
DEFAULT_REGION = "us-east-1"


def is_local_endpoint(url: str | None) -> bool:
    host = urlparse(url).hostname if url else None
    return host in ("127.0.0.1", "localhost", "::1")


def client(service: str, endpoint_url: str | None = None, config: Config | None = None) -> Any:
    """A cached client for `service`; `endpoint_url` overrides AWS_ENDPOINT_URL, `config` the
    default timeouts and retries (the predict path uses tighter ones: `log_queue.SEND_CLIENT_CONFIG`)."""
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    chosen = config or _CONFIG
    key = (service, endpoint, region, id(chosen))
    with _LOCK:
        if key not in _CLIENTS:
            kwargs: dict[str, Any] = {"region_name": region, "config": chosen}
            if endpoint:
                kwargs["endpoint_url"] = endpoint
            if is_local_endpoint(endpoint) and not os.environ.get("AWS_ACCESS_KEY_ID"):
                kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")
            if not _SESSION:
                _SESSION.append(botocore.session.get_session())
            _CLIENTS[key] = _SESSION[0].create_client(service, **kwargs)
        return _CLIENTS[key]


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and moto contexts)."""
    with _LOCK:
        _CLIENTS.clear()
        _SESSION.clear()


def use_session(session: botocore.session.Session) -> None:
    """Build every client from now on from `session` (tests: one whose event hooks check IAM)."""
    with _LOCK:
        _CLIENTS.clear()
        _SESSION[:] = [session]
