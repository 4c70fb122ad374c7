#!/usr/bin/env python3
"""Loopback TCP reference for benches/api/run.sh: the cheapest possible HTTP/1.1 peer, so that a
transfer through it measures loopback TCP (plus the client, curl) and nothing else.

    loopback.py serve FILE   listen on 127.0.0.1 (free port), print
                             "loopback: listening on http://127.0.0.1:PORT" on stderr, then
                             GET  any path: answer 200 with FILE as the body, sent with
                                  sendfile(2) (kernel copies page cache -> socket, no user space)
                             POST/PUT: read the body (Content-Length or chunked) into one reused
                                  1 MiB buffer, discard it, answer {"received": N, "chunked": B}
    loopback.py fetch URL    GET URL with a plain socket, recv_into a reused 1 MiB buffer, print
                             "BYTES SECONDS" (no curl: the raw loopback figure)

One connection at a time, Connection: close. Only what run.sh needs: no error recovery beyond
dropping the connection.
"""

import os
import socket
import sys
import time

BUF = 1 << 20


def read_head(sock):
    """Reads until the blank line; returns (request line, headers dict, leftover bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("peer closed before the end of the head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, rest


class Reader:
    """Buffered reads over a socket, with the bytes already received after the head."""

    def __init__(self, sock, rest):
        self.sock = sock
        self.pending = bytearray(rest)
        self.buf = bytearray(BUF)
        self.view = memoryview(self.buf)

    def readline(self):
        while b"\r\n" not in self.pending:
            n = self.sock.recv_into(self.view, 4096)
            if n == 0:
                raise ConnectionError("peer closed mid-body")
            self.pending += self.view[:n]
        line, _, rest = bytes(self.pending).partition(b"\r\n")
        self.pending = bytearray(rest)
        return line

    def discard(self, n):
        """Reads and drops exactly n bytes."""
        take = min(n, len(self.pending))
        del self.pending[:take]
        n -= take
        while n > 0:
            got = self.sock.recv_into(self.view, min(n, BUF))
            if got == 0:
                raise ConnectionError("peer closed mid-body")
            n -= got


def respond(sock, status, body=b"", extra=""):
    sock.sendall(
        f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}"
        f"Connection: close\r\n\r\n".encode()
        + body
    )


def serve(path):
    size = os.path.getsize(path)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(f"loopback: listening on http://127.0.0.1:{listener.getsockname()[1]}",
          file=sys.stderr, flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                handle(conn, path, size)
            except (ConnectionError, OSError) as e:
                print(f"loopback: connection dropped: {e}", file=sys.stderr, flush=True)


def handle(conn, path, size):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    line, headers, rest = read_head(conn)
    method = line.split(" ", 1)[0]
    if headers.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if method == "GET":
        conn.sendall(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode())
        with open(path, "rb") as f:
            sent = 0
            while sent < size:
                n = conn.sendfile(f, sent, size - sent)
                if n == 0:
                    raise ConnectionError("sendfile sent nothing")
                sent += n
        return
    reader = Reader(conn, rest)
    received = 0
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    if chunked:
        while True:
            n = int(reader.readline().split(b";", 1)[0], 16)
            if n == 0:
                while reader.readline():  # trailers, then the blank line
                    pass
                break
            reader.discard(n)
            received += n
            reader.readline()
    else:
        received = int(headers.get("content-length", "0"))
        reader.discard(received)
    body = f'{{"received": {received}, "chunked": {"true" if chunked else "false"}}}'.encode()
    respond(conn, "200 OK", body, "Content-Type: application/json\r\n")


def fetch(url):
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    start = time.monotonic()
    sock = socket.create_connection((host, int(port or 80)))
    sock.sendall(f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n".encode())
    _, headers, body_start = read_head(sock)
    length = int(headers["content-length"])
    got = len(body_start)
    view = memoryview(bytearray(BUF))
    while got < length:
        n = sock.recv_into(view, BUF)
        if n == 0:
            break
        got += n
    elapsed = time.monotonic() - start
    sock.close()
    if got != length:
        sys.exit(f"loopback fetch: got {got} of {length} bytes")
    print(f"{got} {elapsed:.6f}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "fetch":
        fetch(sys.argv[2])
    else:
        sys.exit("usage: loopback.py serve FILE | fetch URL")


if __name__ == "__main__":
    main()
