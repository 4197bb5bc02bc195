"""Answers with what a typical WSGI app sees of the request body.

It reads the body as Django and most apps do: CONTENT_LENGTH bytes, or nothing when
it is missing, unless wsgi.input_terminated says reading to the end is safe.
/raise fails after reading, /crash kills the worker."""

import hashlib
import os


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    inp = environ["wsgi.input"]
    cl = environ.get("CONTENT_LENGTH")
    if cl:
        data = inp.read(int(cl))
    elif environ.get("wsgi.input_terminated"):
        data = inp.read()
    else:
        data = b""
    if path == "/raise":
        raise RuntimeError("failing on purpose after reading the body")
    if path == "/crash":
        os._exit(1)
    body = (
        "content_length=%s\nlen=%d\nsha256=%s\ninput_terminated=%s\n"
        % (cl if cl is not None else "unset", len(data), hashlib.sha256(data).hexdigest(),
           environ.get("wsgi.input_terminated"))
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
