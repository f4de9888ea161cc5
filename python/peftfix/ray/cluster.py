"""Ray itself: whether it is installed, and joining a cluster.

Ray is an optional dependency (``pip install 'peftfix[ray]'``); nothing else in peftfix imports it.
"""

from __future__ import annotations

import logging
import os
import socket
from types import ModuleType
from typing import Optional

INSTALL_HINT = "pip install 'peftfix[ray]'"
# How long a cluster address may take to accept a connection. Ray itself retries an address where nothing listens
# for minutes before it gives up.
CONNECT_TIMEOUT_S = 10.0


class RayNotInstalled(ImportError):
    """Ray Data is not installed in this environment."""


def require() -> ModuleType:
    """The ``ray`` module, with Ray Data; :class:`RayNotInstalled` saying how to install it otherwise."""
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise RayNotInstalled(
            f"checking on Ray needs Ray Data, which is not installed here ({error}); install it with: {INSTALL_HINT}"
        ) from None
    return ray


def connect(address: Optional[str] = None, *, quiet: bool = False) -> ModuleType:
    """Join a Ray cluster unless this process already has: ``address`` (``auto``, ``local``, ``ray://host:port``,
    ``host:port``), else ``RAY_ADDRESS``, else a cluster of this machine's own, started for this process."""
    ray = require()
    if not ray.is_initialized():
        check_reachable(address or os.environ.get("RAY_ADDRESS") or None)
        # What Ray says of itself as it starts (how the cluster started, that it made an authentication token) is
        # noise on a command's stderr; its errors are not.
        options = {"logging_level": logging.ERROR} if quiet else {}
        ray.init(address=address or None, include_dashboard=False, **options)
    return ray


def check_reachable(address: Optional[str]) -> None:
    """ConnectionError unless something accepts connections at ``address`` (``host:port`` or ``ray://host:port``;
    ``auto``, ``local`` and None are Ray's to find or start)."""
    if address is None or address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return  # not an address Ray takes either: ray.init says so
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ConnectionError(f"nothing answers at {hostport} ({error.strerror or error})") from None
