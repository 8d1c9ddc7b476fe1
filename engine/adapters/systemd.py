"""systemd's readiness protocol (``Type=notify``), without libsystemd: one datagram to the socket
named by ``$NOTIFY_SOCKET`` (sd_notify(3)). Outside systemd the variable is unset and nothing is sent."""

from __future__ import annotations

import os
import socket

__all__ = ["notify"]


def notify(state: str) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``, ``STATUS=...``); True if there was a socket to send to."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):          # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:   # systemd went away or the socket is not ours: the engine runs on regardless
        return False
    return True
