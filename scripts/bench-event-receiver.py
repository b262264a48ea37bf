#!/usr/bin/env python3
"""A cheap event receiver for benchmarks (scripts/bench-audit-events): answers every POST with 204 over
keep-alive HTTP/1.1 connections, counting the requests that carry an X-Berth-Signature header (or, with
--secret, whose signature verifies). One thread, asyncio with a bare Protocol: no per-request thread, no
per-request file write, so the receiver's own CPU stays small beside Berth's (pin it with `taskset -c N`
to keep it off the cores Berth uses).

    bench-event-receiver.py PORT COUNT_FILE [--secret S]

The count is written to COUNT_FILE at most every 0.5 s and at SIGTERM/SIGINT.
"""
import asyncio
import hashlib
import hmac
import signal
import sys

HEADER = b"x-berth-signature:"
OK = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"


class State:
    def __init__(self, path, secret):
        self.path, self.secret = path, secret
        self.count = self.written = 0

    def flush(self):
        if self.count != self.written:
            with open(self.path, "w") as f:
                f.write(str(self.count))
            self.written = self.count


def signed(head, body, secret):
    """Whether the request head carries the signature header (and, with a secret, it verifies)."""
    for line in head.split(b"\r\n")[1:]:
        if line[: len(HEADER)].lower() == HEADER:
            if secret is None:
                return True
            parts = dict(p.split(b"=", 1) for p in line[len(HEADER):].strip().split(b",") if b"=" in p)
            mac = hmac.new(secret, parts.get(b"t", b"") + b"." + body, hashlib.sha256).hexdigest().encode()
            return hmac.compare_digest(mac, parts.get(b"v1", b""))
    return False


class Receiver(asyncio.Protocol):
    def __init__(self, state):
        self.state, self.buffer = state, b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            ok = signed(head, body, self.state.secret)
            self.state.count += ok
            self.transport.write(OK if ok else BAD)


async def main(port, path, secret):
    state = State(path, secret)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
    server = await loop.create_server(lambda: Receiver(state), "127.0.0.1", port, backlog=128)
    while not stop.done():
        await asyncio.wait([stop], timeout=0.5)
        state.flush()
    server.close()
    state.flush()


if __name__ == "__main__":
    args = sys.argv[1:]
    secret = None
    if "--secret" in args:
        i = args.index("--secret")
        secret = args[i + 1].encode()
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    asyncio.run(main(int(args[0]), args[1], secret))
