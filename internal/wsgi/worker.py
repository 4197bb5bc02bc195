"""gantry's WSGI worker: runs one WSGI application for gantry, standard library only.

gantry starts it as `python -c <this file> APP THREADS` in the configured chdir, with
fd 3 a listening unix socket and fd 4 a pipe. It imports APP ("module:callable", or a
path to a .py file, callable "application" unless ":name" follows), writes "ready\n"
to fd 4 and then serves THREADS connections at once, one thread per connection.

Frames, both ways: 1 byte type, 4 bytes little-endian payload length, payload.
gantry -> worker:
  R  a request with its whole body: u32 len(environ), environ (marshal dict), body
  S  a request whose body follows: u32 len(environ), environ (marshal dict)
  B  a piece of the request body; E  end of the body; A  body aborted (payload: why)
worker -> gantry:
  H  marshal((status, headers)), sent before the first body byte
  D  body bytes, sent as produced
  F  send a file: payload <qq offset, count (-1: to the end); the fd rides along
     as SCM_RIGHTS, gantry sends it with sendfile
  Z  response complete;  X  the application failed (payload: a short reason)
"""
import sys

if sys.version_info < (3, 8):
    sys.stderr.write("gantry: the WSGI worker needs Python 3.8 or newer; %s is %s\n"
                     % (sys.executable, sys.version.split()[0]))
    sys.exit(2)

import array
import importlib
import importlib.util
import io
import marshal
import os
import signal
import socket
import stat
import struct
import threading
import traceback

_HDR = struct.Struct("<BI")
_pack = _HDR.pack
_unpack = _HDR.unpack_from
_FILE = struct.Struct("<qq")
_u32 = struct.Struct("<I").unpack_from
_dumps = marshal.dumps
_loads = marshal.loads
_BytesIO = io.BytesIO
_END = _pack(90, 0)  # Z
_join = b"".join


class Gone(Exception):
    """gantry closed the connection: the client went away or the request timed out."""


class FileWrapper:
    """wsgi.file_wrapper: a regular file goes back to gantry, which uses sendfile."""

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


class Conn:
    """One connection from gantry, read frame by frame into a reused buffer."""

    __slots__ = ("sock", "buf", "view", "start", "end")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(65536)
        self.view = memoryview(self.buf)
        self.start = self.end = 0

    def frame(self):
        start, end = self.start, self.end
        if end - start >= 5:
            kind, n = _unpack(self.buf, start)
            stop = start + 5 + n
            if stop <= end:
                self.start = stop
                return kind, self.view[start + 5:stop]
        return self._frame_slow()

    def _frame_slow(self):
        buf, start, end = self.buf, self.start, self.end
        if start == end:
            start = end = 0
        while True:
            if end - start >= 5:
                kind, n = _unpack(buf, start)
                if end - start >= 5 + n:
                    self.start, self.end = start + 5 + n, end
                    return kind, self.view[start + 5:start + 5 + n]
                need = 5 + n
            else:
                need = 5
            if len(buf) - start < need:
                # Make room: move what is buffered to the front, grow for a big frame.
                data = bytes(buf[start:end])
                if len(buf) < need:
                    buf = self.buf = bytearray(need)
                    self.view = memoryview(buf)
                buf[:len(data)] = data
                start, end = 0, len(data)
            try:
                got = self.sock.recv_into(self.view[end:])
            except OSError as e:
                raise Gone() from e
            if not got:
                raise Gone()
            end += got


class Input:
    """wsgi.input for a body that gantry streams: read until the E frame."""

    def __init__(self, conn):
        self.conn = conn
        self.buf = bytearray()
        self.eof = False

    def _more(self):
        if self.eof:
            return False
        kind, payload = self.conn.frame()
        if kind == 66:  # B
            self.buf += payload
            return True
        self.eof = True
        if kind == 65:  # A
            raise OSError("request body aborted: " + bytes(payload).decode("utf-8", "replace"))
        return False

    def drain(self):
        while self._more():
            del self.buf[:]

    def read(self, size=-1):
        if size is None or size < 0:
            while self._more():
                pass
            size = len(self.buf)
        else:
            while len(self.buf) < size and self._more():
                pass
        data = bytes(self.buf[:size])
        del self.buf[:size]
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
    __slots__ = ("sock", "status", "headers", "sent")

    def __init__(self, sock):
        self.sock = sock
        self.status = None
        self.headers = None
        self.sent = False

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
        return _pack(72, len(p)) + p

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Gone() from e

    def write(self, data):
        if type(data) is not bytes:
            raise TypeError("write() takes bytes, not %s" % type(data).__name__)
        head = b"" if self.sent else self.head()
        if not data:
            if head:
                self.send(head)
        elif len(data) < 65536:
            self.send(head + _pack(68, len(data)) + data)
        else:
            self.send(head + _pack(68, len(data)))
            self.send(data)

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
        frame = self.head() + _pack(70, 16) + _FILE.pack(offset, -1) + _END
        try:
            self.sock.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        except OSError as e:
            raise Gone() from e
        return True


class Worker:
    def __init__(self, app, threads):
        self.app = app
        self.threads = threads
        self.errors = sys.stderr

    def serve(self, sock):
        conn = Conn(sock)
        app = self.app
        errors = self.errors
        recv_into = sock.recv_into
        send = sock.sendall
        unpack = _unpack
        while True:
            # The frame reader inlined: a request that arrives whole is parsed from
            # the buffer without a method call.
            buf, start, end = conn.buf, conn.start, conn.end
            if start == end:
                try:
                    end = recv_into(buf)
                except OSError as e:
                    raise Gone() from e
                if not end:
                    raise Gone()
                start = 0
            if end - start >= 5:
                kind, n = unpack(buf, start)
                stop = start + 5 + n
                if stop <= end:
                    conn.start, conn.end = stop, end
                    payload = conn.view[start + 5:stop]
                else:
                    conn.start, conn.end = start, end
                    kind, payload = conn._frame_slow()
            else:
                conn.start, conn.end = start, end
                kind, payload = conn._frame_slow()
            if kind != 82 and kind != 83:  # leftovers of a body the app did not read
                continue
            n = _u32(payload)[0]
            environ = _loads(payload[4:4 + n])
            stream = None
            if kind == 82:
                environ["wsgi.input"] = _BytesIO(payload[4 + n:])
            else:
                stream = environ["wsgi.input"] = Input(conn)
            environ["wsgi.errors"] = errors
            environ["wsgi.file_wrapper"] = FileWrapper
            resp = Response(sock)
            result = None
            try:
                result = app(environ, resp.start_response)
                listed = type(result) is list
                if (listed or getattr(result, "streaming", True) is False) and not resp.sent:
                    # A list, or a response that says its body is already in memory
                    # (Django's HttpResponse): one bytes object, one send, the whole
                    # response in one frame run.
                    body = b"".join(result)
                    head = resp.head()
                    try:
                        if body:
                            send(_join((head, _pack(68, len(body)), body, _END)))
                        else:
                            send(head + _END)
                    except OSError as e:
                        raise Gone() from e
                    if not listed:
                        close(result, environ)
                    if stream is not None and not stream.eof:
                        try:
                            stream.drain()
                        except OSError:
                            pass
                    continue
                elif type(result) is FileWrapper and resp.sendfile(result):
                    pass
                else:
                    write = resp.write
                    for data in result:
                        if data:
                            write(data)
                        elif type(data) is not bytes:
                            raise TypeError("the application yielded %s, not bytes" % type(data).__name__)
                    if resp.sent:
                        resp.send(_END)
                    else:
                        resp.send(resp.head() + _END)
            except Gone:
                close(result, environ)
                return
            except BaseException as e:
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    close(result, environ)
                    raise
                log_exception(environ)
                close(result, environ)
                why = ("%s: %s" % (type(e).__name__, e)).encode("utf-8", "replace")[:1000]
                resp.send(_pack(88, len(why)) + why)
                continue
            close(result, environ)
            if stream is not None and not stream.eof:
                try:
                    stream.drain()
                except OSError:
                    pass

    def thread(self, listener):
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                continue
            try:
                self.serve(sock)
            except Gone:
                pass
            except Exception:
                traceback.print_exc()
            finally:
                sock.close()


def close(result, environ):
    if result is not None and hasattr(result, "close"):
        try:
            result.close()
        except Exception:
            log_exception(environ, "in close()")


def log_exception(environ, where="while serving"):
    sys.stderr.write("gantry: exception %s %s %s\n%s" % (
        where, environ.get("REQUEST_METHOD", "?"),
        environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), traceback.format_exc()))
    sys.stderr.flush()


def load(spec):
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
        name = name or "application"
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


def main():
    spec, threads = sys.argv[1], int(sys.argv[2])
    listener = socket.socket(fileno=3)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        app = load(spec)
    except BaseException:
        sys.stderr.write("gantry: cannot import WSGI application %r (python %s, cwd %s)\n%s"
                         % (spec, sys.executable, os.getcwd(), traceback.format_exc()))
        sys.stderr.flush()
        os._exit(3)
    worker = Worker(app, threads)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for _ in range(threads):
        threading.Thread(target=worker.thread, args=(listener,), daemon=True).start()
    os.write(4, b"ready\n")
    os.close(4)
    stop.wait()
    sys.stdout.flush()
    sys.stderr.flush()


if __name__ == "__main__":
    main()
