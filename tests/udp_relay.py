"""A UDP relay for the sender's tests: sender <-> relay <-> receiver on loopback. Data, FIN and FIN_ACK pass
untouched; each reply of the receiver goes through :meth:`UdpRelay.on_reply`, which a test overrides to drop,
duplicate, reorder or forge what the sender gets (tests/test_sender.py, tests/test_sender_hardening.py)."""

from __future__ import annotations

import socket
import threading


class UdpRelay(threading.Thread):
    def __init__(self, receiver_port: int, poll_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(poll_s)
        self.port = self.sock.getsockname()[1]
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.up.connect(("127.0.0.1", receiver_port))
        self.up.setblocking(False)
        self.stop = False
        self.client = None
        self.error: BaseException | None = None

    def to_sender(self, data: bytes) -> None:
        self.sock.sendto(data, self.client)

    def on_reply(self, data: bytes) -> None:
        """A datagram from the receiver (an ACK, a FIN_ACK): passed on unchanged unless overridden."""
        self.to_sender(data)

    def run(self) -> None:
        try:
            while not self.stop:
                try:
                    data, addr = self.sock.recvfrom(2048)
                    self.client = addr
                    self.up.send(data)
                except (socket.timeout, BlockingIOError):
                    pass
                while self.client:
                    try:
                        reply = self.up.recv(2048)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    self.on_reply(reply)
        except BaseException as e:  # surfaced by the test
            self.error = e
