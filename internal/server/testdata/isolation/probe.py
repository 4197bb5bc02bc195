#!/usr/bin/python3
# probe tries, from inside an app's own process, to reach what the query names,
# and answers with what each attempt got: "ok" or the errno's name. It runs as a
# WSGI app (probe:application) and as a CGI script.
import errno
import json
import os
import socket
import urllib.parse


def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    finally:
        s.close()


def read(path):
    with open(path, "rb") as f:
        f.read(1)


ACTIONS = {
    "connect": connect,
    "read": read,
    "list": os.listdir,
    "kill": lambda pid: os.kill(int(pid), 0),
}


def application(environ, start_response):
    out = {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()}
    for key, values in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).items():
        for v in values:
            out[key + " " + v] = attempt(lambda: ACTIONS[key](v))
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    import wsgiref.handlers
    wsgiref.handlers.CGIHandler().run(application)
