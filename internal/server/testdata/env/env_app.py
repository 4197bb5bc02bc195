"""Prints the CGI keys of the WSGI environ, sorted, minus REMOTE_PORT (per
connection); X-Env-Sum carries their hash for HEAD requests."""
import hashlib


def application(environ, start_response):
    lines = []
    for k in sorted(environ):
        v = environ[k]
        if "." in k or k == "REMOTE_PORT" or not isinstance(v, str):
            continue
        lines.append(k + "=" + v + "\n")
    out = "".join(lines).encode("latin-1", "backslashreplace")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out))),
                              ("X-Env-Sum", hashlib.md5(out).hexdigest())])
    return [out]
