"""WSGI test application for gantry's WSGI gateway tests.

`application` is wrapped in wsgiref.validate.validator (with its warnings turned into
errors), so every test that uses it also checks PEP 3333 compliance on both sides.
`raw` is the same app unwrapped, for what the validator forbids on purpose (invalid
headers) or hides (wsgi.file_wrapper, which it wraps in its own iterator).
"""
import hashlib
import json
import os
import sys
import threading
import time
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)
_local = threading.local()


def text(start_response, body, status="200 OK", extra=()):
    if isinstance(body, str):
        body = body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))] + list(extra))
    return [body]


def query(environ):
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


class Closing:
    """An iterable that records close() in a file."""

    def __init__(self, marker, chunks, forever=False):
        self.marker, self.chunks, self.forever = marker, chunks, forever

    def __iter__(self):
        for c in self.chunks:
            yield c
        while self.forever:
            time.sleep(0.01)
            yield b"more\n"

    def close(self):
        with open(self.marker, "w") as f:
            f.write("closed")


def raw(environ, start_response):
    path = environ["PATH_INFO"]
    q = query(environ)
    if path.startswith("/env"):
        out = {k: v for k, v in environ.items() if isinstance(v, str)}
        for k in ("wsgi.version", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
            out[k] = environ.get(k)
        out["pid"] = os.getpid()
        out["cwd"] = os.getcwd()
        out["os.environ"] = {k: os.environ.get(k, "") for k in q.get("osenv", "").split(",") if k}
        return text(start_response, json.dumps(out))
    if path == "/echo":
        # Honour CONTENT_LENGTH when present, else read to EOF (wsgi.input_terminated).
        n = environ.get("CONTENT_LENGTH")
        if n:
            data = environ["wsgi.input"].read(int(n))
        else:
            data = b""
            while True:
                chunk = environ["wsgi.input"].read(65536)
                if not chunk:
                    break
                data += chunk
        return text(start_response, "%d %s" % (len(data), hashlib.sha256(data).hexdigest()))
    if path == "/lines":
        inp = environ["wsgi.input"]
        first = inp.readline()
        second = inp.readline(3)
        rest = inp.readlines()
        return text(start_response, json.dumps([first.decode(), second.decode(), [l.decode() for l in rest]]))
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first\n"
            deadline = time.time() + 20
            while not os.path.exists(q["wait"]) and time.time() < deadline:
                time.sleep(0.01)
            yield b"second\n"
        return gen()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        write(b"then ")
        return [b"returned"]
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/redirect":
        start_response("302 Found", [("Location", "/elsewhere"), ("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        return [b""]
    if path == "/excinfo":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("before the body")
        except ValueError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"custom error page"]
    if path == "/excinfo-late":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")
        try:
            raise ValueError("after the head")
        except ValueError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"never"]
    if path == "/fail":
        raise RuntimeError("unhandled in the app")
    if path == "/fail-iter":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return FailingIter(q["marker"])
    if path == "/close":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing(q["marker"], [b"one\n", b"two\n"], forever=q.get("forever") == "1")
    if path == "/close-in-memory":
        # Like Django's HttpResponse: says its body is in memory (streaming False).
        start_response("200 OK", [("Content-Type", "text/plain")])
        body = Closing(q["marker"], [b"one\n", b"two\n"])
        body.streaming = False
        return body
    if path == "/file":
        f = open(q["name"], "rb")
        if "skip" in q:
            f.read(int(q["skip"]))
        size = os.fstat(f.fileno()).st_size - f.tell()
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 8192)
    if path == "/header":
        start_response("200 OK", [("Content-Type", "text/plain"), (q["name"], q.get("value", "x"))])
        return [b"bad"]
    if path == "/status":
        start_response(q["s"], [("Content-Type", "text/plain")])
        return [b"status"]
    if path == "/bytes-header":
        start_response("200 OK", [(b"X-Bytes", b"1")])
        return [b"bad"]
    if path == "/sleep":
        if q.get("mark"):
            open(q["mark"], "w").close()  # tells a test the request reached the app
        time.sleep(float(q.get("s", "30")))
        return text(start_response, "slept")
    if path == "/crash":
        os._exit(1)
    if path == "/pid":
        time.sleep(float(q.get("s", "0")))
        return text(start_response, str(os.getpid()))
    if path == "/errors":
        environ["wsgi.errors"].write("app wrote to wsgi.errors\n")
        environ["wsgi.errors"].flush()
        return text(start_response, "logged")
    if path == "/noniter":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return 42
    if path == "/twice":
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"twice"]
    if path == "/write-late":
        write = start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first"
            write(b"too late")
        return gen()
    if path == "/huge-header":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Huge", "h" * int(q.get("n", "2000000")))])
        return [b"huge"]
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["not bytes"]
    if path == "/exit":
        sys.exit(3)
    if path == "/thread":
        # What a request sees of its thread: threading.local keeps one value per
        # thread, so a thread's count goes up by one with each of its requests.
        n = getattr(_local, "n", 0) + 1
        _local.n = n
        return text(start_response, json.dumps({"ident": threading.get_ident(), "native": threading.get_native_id(),
                                                "local": n, "executable": sys.executable, "prefix": sys.prefix}))
    if path == "/fork":
        # The child returns into gantry's code, as an app that forks by mistake
        # does; the parent reports what became of it (and never leaves it behind).
        pid = os.fork()
        if pid == 0:
            return text(start_response, "from the child")
        deadline = time.time() + 5
        while time.time() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return text(start_response, "child exited %d" % os.waitstatus_to_exitcode(status))
            time.sleep(0.01)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return text(start_response, "child hung")
    if path == "/hog":
        held = bytearray(int(q["n"]))  # touches no page: only address space
        return text(start_response, "held %d" % len(held))
    if path == "/print-surrogate":
        # A file name decoded with surrogateescape, as os.listdir gives for bytes
        # that are not UTF-8.
        print("listing b\udcffd.txt")
        return text(start_response, "printed")
    if path == "/big":
        n = int(q["n"])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"x" * n]
    return text(start_response, "not found: " + path, "404 Not Found")


class FailingIter(Closing):
    def __init__(self, marker):
        super().__init__(marker, [])

    def __iter__(self):
        yield b"partial"
        raise RuntimeError("during iteration")


application = validator(raw)
