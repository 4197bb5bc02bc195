"""gantry's embedded WSGI shim: runs in each interpreter gantry starts for a wsgi route
with mode = "embedded" (internal/wsgi/pyembed). It does in Python what worker.py does
for daemon mode, with the same rules, and reaches gantry through the _gantry module
(pyembed.c) instead of a socket: head, respond and write send the response, read
reads the request body, sendfile hands a regular file to gantry, log writes gantry's
log. Each of them releases the GIL while gantry does the work.

A request handle h names the request on gantry's side; after the request ended there
(it timed out, the client left, the response was refused) every call raises
_gantry.Gone, a BaseException, so that the app stops and its close() runs.
"""
import gc
import importlib
import importlib.util
import io
import marshal
import os
import stat
import sys
import traceback

import _gantry

Gone = _gantry.Gone
_head = _gantry.head
_respond = _gantry.respond
_write = _gantry.write
_read = _gantry.read
_sendfile = _gantry.sendfile
_log = _gantry.log
_dumps = marshal.dumps
_BytesIO = io.BytesIO
_join = b"".join
# The largest body handle() returns for gantry to copy, rather than send itself.
_RETURN_MAX = 256 * 1024


class LogStream:
    """sys.stdout, sys.stderr and wsgi.errors: each write is a line in gantry's log."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, h):
        self.h = h

    def write(self, s):
        if type(s) is not str:
            raise TypeError("write() takes str, not %s" % type(s).__name__)
        t = s.rstrip("\n")
        if t:
            _log(self.h, 0, t)
        return len(s)

    def writelines(self, lines):
        for s in lines:
            self.write(s)

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation("gantry's log has no file descriptor")


class FileWrapper:
    """wsgi.file_wrapper: a regular file goes to gantry, which uses sendfile."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class Input:
    """wsgi.input for a body gantry did not hold whole: read from gantry's spool."""

    def __init__(self, h):
        self.h = h
        self.buf = bytearray()
        self.eof = False

    def _next(self):
        if self.eof:
            return None
        data = _read(self.h, 65536)
        if not data:
            self.eof = True
            return None
        return data

    def _more(self):
        data = self._next()
        if data is None:
            return False
        self.buf += data
        return True

    def read(self, size=-1):
        if size is None or size < 0:
            size = -1
        buf = self.buf
        if 0 <= size <= len(buf):
            data = bytes(buf[:size])
            del buf[:size]
            return data
        parts = [bytes(buf)] if buf else []
        have = len(buf)
        del buf[:]
        while size < 0 or have < size:
            data = self._next()
            if data is None:
                break
            parts.append(data)
            have += len(data)
        data = _join(parts)
        if 0 <= size < len(data):
            buf += data[size:]
            data = data[:size]
        return data

    def readline(self, size=-1):
        if size is None:
            size = -1
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                n = i + 1
                break
            if 0 <= size <= len(self.buf) or not self._more():
                n = len(self.buf)
                break
        if 0 <= size < n:
            n = size
        return self.read(n)

    def readlines(self, hint=-1):
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _native(s):
    # marshal takes exact str only; "".join turns a str subclass (Django's SafeString)
    # into one and rejects anything that is not a str at all.
    return "".join((s,))


class Response:
    __slots__ = ("h", "status", "headers", "sent", "iterating")

    def __init__(self, h):
        self.h = h
        self.status = None
        self.headers = None
        self.sent = False
        self.iterating = False

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if type(status) is not str:
            raise TypeError("status must be a str, not %s" % type(status).__name__)
        if type(headers) is not list:
            raise TypeError("response headers must be a list, not %s" % type(headers).__name__)
        self.status = status
        self.headers = headers
        return self.write

    def head(self):
        if self.status is None:
            raise AssertionError("the application sent body data before calling start_response()")
        try:
            p = _dumps((self.status, self.headers))
        except ValueError:
            p = _dumps((_native(self.status), [(_native(k), _native(v)) for k, v in self.headers]))
        self.sent = True
        return p

    def write(self, data):
        """The write() callable start_response returns."""
        if self.iterating:
            raise AssertionError("write() called after the application returned its iterable")
        self.send(data)

    def send(self, data):
        if type(data) is not bytes:
            raise TypeError("write() takes bytes, not %s" % type(data).__name__)
        if not self.sent:
            _head(self.h, self.head())
        if data:
            _write(self.h, data)

    def sendfile(self, wrapper):
        """Hands a regular file to gantry; False if it is not one."""
        f = wrapper.filelike
        try:
            fd = f.fileno()
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            offset = f.tell()
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return False
        _head(self.h, self.head())
        _sendfile(self.h, fd, offset)
        return True


def _close(h, result, environ):
    if result is not None and hasattr(result, "close"):
        try:
            result.close()
        except BaseException:
            _log_exception(h, environ, "in close()", 2)


def _log_exception(h, environ, where="while serving", level=1):
    """Logs the exception being handled; level 1 fails the request, 2 only logs."""
    text = "exception %s %s %s\n%s" % (
        where, environ.get("REQUEST_METHOD", "?"),
        environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), traceback.format_exc())
    _log(h, level, text)


def _load(spec):
    """Imports the application named by spec: "module:callable" or "file.py[:callable]"."""
    target, _, name = spec.partition(":")
    if target.endswith(".py") or os.sep in target:
        path = os.path.abspath(target)
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        modname = "_gantry_wsgi_" + os.path.splitext(os.path.basename(path))[0]
        s = importlib.util.spec_from_file_location(modname, path)
        if s is None:
            raise ImportError("cannot load %s: not a Python file" % path)
        module = importlib.util.module_from_spec(s)
        sys.modules[modname] = module
        s.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    name = name or "application"
    app = module
    for part in name.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise AttributeError("%s has no attribute %r (app %r)" % (module.__name__, name, spec)) from None
    if not callable(app):
        raise TypeError("%r is %s, not a WSGI callable" % (spec, type(app).__name__))
    return app


def _venv(python):
    """Adds the site-packages of python's virtualenv, if it is one: the interpreter
    was started with the first embedded route's python, a later route may name
    another venv of the same Python version."""
    exe_dir = os.path.dirname(python)
    for d in (exe_dir, os.path.dirname(exe_dir)):
        if os.path.isfile(os.path.join(d, "pyvenv.cfg")):
            break
    else:
        return
    if os.path.realpath(sys.prefix) == os.path.realpath(d):
        return
    import site
    site.addsitedir(os.path.join(d, "lib", "python%d.%d" % sys.version_info[:2], "site-packages"))
    sys.prefix = sys.exec_prefix = d


def _guard_exit():
    """os._exit in gantry's process would end gantry, with every request in flight:
    there it raises SystemExit (the request's 500, with the traceback in the log).
    In a child the app forked it exits as it should."""
    real = os._exit
    if getattr(real, "_gantry", False):
        return  # the main interpreter, booted for another app already
    pid = os.getpid()

    def _exit(status):
        if os.getpid() == pid:
            raise SystemExit("os._exit(%r) would end gantry, which runs this app embedded" % (status,))
        real(status)

    _exit._gantry = True
    os._exit = _exit


def _no_fork():
    """In a sub-interpreter Python 3.11 aborts a forked child with a fatal error
    (3.12 refuses the fork): raise, as 3.12 does, before a copy of gantry is made."""

    def fork():
        raise RuntimeError('os.fork() is not supported in a sub-interpreter: use subprocess, '
                           'or interpreter = "main" for an app that must fork')

    os.fork = fork


def boot(args):
    """args: [app, chdir, python, the pool's log handle, "NAME=value" of the route's
    env...]. Returns the function gantry calls for each request."""
    spec, chdir, python, logh = args[0], args[1], args[2], int(args[3])
    for kv in args[4:]:
        k, _, v = kv.partition("=")
        os.environ[k] = v
    sys.executable = python
    _guard_exit()
    if _SUB:
        _no_fork()
    _venv(python)
    if chdir in sys.path:
        sys.path.remove(chdir)
    sys.path.insert(0, chdir)
    log = LogStream(logh)
    sys.stdout = sys.stderr = log
    app = _load(spec)
    # What the import built lives as long as the interpreter: out of the collector's
    # sight, a full collection no longer walks Django's whole module graph.
    gc.collect()
    gc.freeze()

    def handle(h, environ, body):
        environ["wsgi.input"] = _BytesIO(body) if body is not None else Input(h)
        environ["wsgi.errors"] = log
        environ["wsgi.file_wrapper"] = FileWrapper
        resp = Response(h)
        result = out = None
        try:
            result = app(environ, resp.start_response)
            if (type(result) is list or getattr(result, "streaming", True) is False) and not resp.sent:
                # A list, or a body already in memory (Django's HttpResponse): the
                # head and the whole body go back as the return value, which saves
                # a call into gantry; a large body is sent from where it is.
                body = _join(result)
                if len(body) <= _RETURN_MAX:
                    out = (resp.head(), body)
                else:
                    _respond(h, resp.head(), body)
            elif type(result) is FileWrapper and resp.sendfile(result):
                pass
            else:
                resp.iterating = True
                send = resp.send
                for data in result:
                    if data:
                        send(data)
                    elif type(data) is not bytes:
                        raise TypeError("the application yielded %s, not bytes" % type(data).__name__)
                if not resp.sent:
                    _head(h, resp.head())
        except Gone:
            pass
        except BaseException:
            _log_exception(h, environ)
        _close(h, result, environ)
        return out

    return handle
