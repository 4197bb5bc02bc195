#!/usr/bin/env python3
"""idle: hold N keep-alive connections open to a server and print what it costs.

    idle.py N URL PID [PID ...]

Opens N connections to URL's host and port, sends one GET for URL's path on each and
reads the whole response, so every connection is an idle keep-alive connection the
server has served once. Then it sums VmRSS and counts open descriptors over the PIDs
given and their children (nginx's master and workers, gantry alone), checks that
every connection is still open, and prints one line:

    connections=N open=N rss_kib=K fds=F
"""
import os
import selectors
import socket
import sys
import time
import urllib.parse


def tree(pids):
    """The pids and all their descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    n, url, pids = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2]), [int(p) for p in sys.argv[3:]]
    req = f"GET {url.path or '/'} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    socks = []
    pending = {}
    for _ in range(n):
        s = socket.create_connection((url.hostname, url.port), timeout=10)
        s.sendall(req)
        s.setblocking(False)
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        # Read answers as they come so the server's send buffers never fill.
        while len(pending) > 256:
            drain(sel, pending, 10)
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        drain(sel, pending, 1)
    if pending:
        sys.exit(f"idle: {len(pending)} connections got no whole answer")
    # Let the server settle (allocations freed after the first response, GC).
    time.sleep(2)
    all_pids = tree(pids)
    rss = sum(rss_kib(p) for p in all_pids)
    fds = sum(len(os.listdir(f"/proc/{p}/fd")) for p in all_pids)
    open_ = 0
    for s in socks:
        try:
            open_ += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            open_ += 1
        except OSError:
            pass
    print(f"connections={n} open={open_} rss_kib={rss} fds={fds}")
    for s in socks:
        s.close()


def drain(sel, pending, timeout):
    for key, _ in sel.select(timeout):
        s = key.fileobj
        try:
            data = s.recv(65536)
        except BlockingIOError:
            continue
        buf = pending.get(s, b"") + data
        head, sep, body = buf.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        if not data or (sep and length is not None and len(body) >= length):
            pending.pop(s, None)
            sel.unregister(s)
        else:
            pending[s] = buf


if __name__ == "__main__":
    main()
