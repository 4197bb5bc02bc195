"""A WSGI app with the response shapes a gateway relays, for the fast-path tests."""
import os


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/small":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]
    if path == "/nolength":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"abc", b"def"]
    if path == "/untyped":
        start_response("200 OK", [])
        return [b"<!doctype html><p>sniff me"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"x" * 3000 for _ in range(3))
    if path == "/empty":
        start_response("204 No Content", [("X-Why", "nothing")])
        return []
    if path == "/query":
        body = (environ["REQUEST_METHOD"] + " " + environ["QUERY_STRING"] + " " +
                environ.get("HTTP_X_TEST", "-")).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/file":
        # wsgi.file_wrapper: gantry sends the file itself (sendfile when it can).
        f = open(__file__, "rb")
        headers = [("Content-Type", "text/x-python")]
        if environ["QUERY_STRING"] == "length":
            headers.append(("Content-Length", str(os.fstat(f.fileno()).st_size)))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](f)
    if path == "/crash":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def die():
            yield b"partial"
            os._exit(1)
        return die()
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not here"]
