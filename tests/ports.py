"""Loopback ports for the servers the tests start (TSA, gunicorn, redis-server, `manage.py up`)."""

import socket


def free_port() -> int:
    """Return a loopback port the kernel just handed out, so parallel test processes never pick the same one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
