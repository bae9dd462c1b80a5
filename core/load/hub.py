"""Whether the Hugging Face hub can be reached, asked once per process with one short connection (issue 20 item
12): without it huggingface_hub retries every request with back-off (about 27 s) before a hub id that is not in the
local cache fails. When the hub cannot be reached, a hub id loads from the local cache only and fails at once."""

from __future__ import annotations

import functools
import os
import socket
import threading
from urllib.parse import urlparse

PROBE_SECONDS = 3.0
"""How long the one connection attempt (name lookup included) may take."""
_PROXIES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


def offline() -> bool:
    """HF_HUB_OFFLINE is set: only the local cache is read."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_host() -> str:
    """The hub's host name (HF_ENDPOINT's, default huggingface.co)."""
    return urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"


@functools.lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """One TCP connection to the hub within PROBE_SECONDS (cached for the process). True without trying when a
    proxy is configured (the direct connection says nothing then)."""
    if any(os.environ.get(name) for name in _PROXIES):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    answer: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((hub_host(), port), timeout=PROBE_SECONDS).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)     # a name lookup has no timeout of its own
    thread.start()
    thread.join(PROBE_SECONDS)
    return bool(answer and answer[0])


def cache_only(src: str) -> bool:
    """Whether ``src`` (what from_pretrained reads) must come from the local cache: a hub id while offline or while
    the hub cannot be reached. Never for a local path, and no probe then."""
    if os.path.exists(src):
        return False
    return offline() or not hub_reachable()


def unreachable() -> bool:
    """The probe ran and found no hub (for the error message; never probes by itself)."""
    return hub_reachable.cache_info().currsize > 0 and not hub_reachable()
