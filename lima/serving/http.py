"""Running an ASGI app on loopback from a thread (tests, the local judge, benchmarks), and host checks."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def background_server(app: Any, host: str = "127.0.0.1", port: int = 0, ready_timeout: float = 30.0) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a daemon thread; yield its root URL ("http://host:port").

    We bind the socket ourselves so `port=0` gives a free port we know before the server starts, and tests
    running in parallel never collide.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, host=host, port=bound_port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=1, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{bound_port}")
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"server on {host}:{bound_port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost": an address no other machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
