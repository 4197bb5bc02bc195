"""gantry's WSGI worker: runs one WSGI application for gantry, standard library only.

gantry writes it to its private socket directory and starts it as
`python .../gantry_wsgi_worker.py APP THREADS` in the configured chdir, with
fd 3 a listening unix socket and fd 4 a pipe. It imports APP ("module:callable", or a
path to a .py file, callable "application" unless ":name" follows), writes "ready\n"
to fd 4 and then serves up to THREADS requests at once on THREADS threads (see Worker:
one thread serves the fast ones; the others take over when a request blocks).

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
import gc
import importlib
import importlib.util
import io
import marshal
import os
import select
import signal
import socket
import stat
import struct
import threading
import time
import traceback

_HDR = struct.Struct("<BI")
_pack = _HDR.pack
_unpack = _HDR.unpack_from
_FILE = struct.Struct("<qq")
_u32 = struct.Struct("<I").unpack_from
_dumps = marshal.dumps
_loads = marshal.loads
_BytesIO = io.BytesIO

# Frame types, named as protocol.go names them (TestWorkerFrameNames holds the two
# to the same letters).
frameRequest = ord("R")  # environ + complete body
frameStream = ord("S")  # environ; body follows in B frames
frameBody = ord("B")
frameBodyEnd = ord("E")
frameBodyAbort = ord("A")
frameHead = ord("H")
frameData = ord("D")
frameFile = ord("F")
frameEnd = ord("Z")
frameError = ord("X")

# The exit status after the app ran out of memory (supervise.ExitMemory).
EXIT_MEMORY = 86

_END = _pack(frameEnd, 0)
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

    def _next(self):
        """The next B frame's payload (a view valid until the next frame), or None."""
        if self.eof:
            return None
        kind, payload = self.conn.frame()
        if kind == frameBody:
            return payload
        self.eof = True
        if kind == frameBodyAbort:
            raise OSError("request body aborted: " + bytes(payload).decode("utf-8", "replace"))
        return None

    def _more(self):
        payload = self._next()
        if payload is None:
            return False
        self.buf += payload
        return True

    def drain(self):
        while self._more():
            del self.buf[:]

    def read(self, size=-1):
        if size is None or size < 0:
            size = -1
        buf = self.buf
        if 0 <= size <= len(buf):
            data = bytes(buf[:size])
            del buf[:size]
            return data
        # Whole frames are gathered and joined once (an upload read in one call
        # is the common case), rather than grown into one buffer and cut.
        parts = [bytes(buf)] if buf else []
        have = len(buf)
        del buf[:]
        while size < 0 or have < size:
            payload = self._next()
            if payload is None:
                break
            parts.append(bytes(payload))
            have += len(payload)
        data = b"".join(parts)
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
        return _pack(frameHead, len(p)) + p

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
            self.send(head + _pack(frameData, len(data)) + data)
        else:
            self.send(head + _pack(frameData, len(data)))
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
        frame = self.head() + _pack(frameFile, 16) + _FILE.pack(offset, -1) + _END
        try:
            self.sock.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        except OSError as e:
            raise Gone() from e
        return True


class _Role:
    """What the watchdog sees of a thread that leads."""

    __slots__ = ("busy", "epoch", "fd", "disarmed")

    def __init__(self):
        self.busy = False
        self.epoch = 0
        self.fd = -1
        self.disarmed = False


class Worker:
    """Serves gantry's connections on a pool of threads.

    One thread at a time, the lead, waits in epoll for any connection and serves the
    request that arrives inline, while the others stand by. When a request holds the
    lead for more than a tick or two (a slow view, a blocking query, a streamed body),
    the watchdog takes that connection out of epoll and hands the lead to a standby
    thread, so THREADS requests still run at once when they need to. Fast requests
    thus never pass the GIL from thread to thread, which costs more CPU than they do.
    """

    def __init__(self, app, listener):
        self.app = app
        self.errors = sys.stderr
        self.listener = listener
        self.conns = {}  # fd -> Conn
        self.lead = None  # the _Role of the thread that polls
        self.standby = threading.Semaphore(1)  # one release per vacant lead
        self.lock = threading.Lock()  # a busy lead's end against the watchdog
        self.parked = False
        self.wake = threading.Event()
        self.ep = None
        if hasattr(select, "epoll"):
            self.ep = select.epoll()
            listener.setblocking(False)
            self.ep.register(listener.fileno(), select.EPOLLIN)

    def thread(self):
        me = _Role()
        while True:
            self.standby.acquire()
            self.lead = me
            try:
                self.poll(me)
            except BaseException:
                with self.lock:
                    if self.lead is me:
                        self.lead = None
                        self.standby.release()
                raise

    def poll(self, me):
        """Leads until the watchdog hands the lead to another thread."""
        ep_poll = self.ep.poll
        lfd = self.listener.fileno()
        conns = self.conns
        lock = self.lock
        while self.lead is me:
            for fd, _ in ep_poll(-1, 8):
                if self.lead is not me:
                    break  # level-triggered: the new lead sees the rest
                conn = conns.get(fd)
                if conn is None and fd != lfd:
                    continue
                me.fd = fd
                me.epoch += 1
                me.busy = True
                if self.parked:
                    self.wake.set()
                if conn is None:
                    self.accept()
                    kept = True
                else:
                    kept = self.ready(fd, conn)
                with lock:
                    me.busy = False
                    if me.disarmed:
                        me.disarmed = False
                        if kept:
                            self.ep.register(fd, select.EPOLLIN)

    def accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # Out of descriptors, say: the listener stays readable, so pause
                # rather than spin (the watchdog hands the other connections on).
                traceback.print_exc()
                time.sleep(0.1)
                return
            sock.setblocking(True)
            self.conns[sock.fileno()] = Conn(sock)
            self.ep.register(sock.fileno(), select.EPOLLIN)

    def ready(self, fd, conn):
        """Serves what arrived on conn; False if the connection is gone."""
        try:
            self.serve(conn)
            return True
        except Gone:
            pass
        except Exception:
            traceback.print_exc()
        except BaseException:
            self.drop(fd, conn)
            raise
        self.drop(fd, conn)
        return False

    def drop(self, fd, conn):
        del self.conns[fd]
        conn.sock.close()

    def watch(self, tick=0.002, park_after=500):
        """Hands the lead on when its thread spends over a tick on one connection."""
        last, epoch, idle = None, 0, 0
        while True:
            time.sleep(tick)
            t = self.lead
            if t is None or not t.busy:
                last = None
                idle += 1
                if idle >= park_after:
                    # Idle: sleep until a request comes instead of ticking.
                    self.parked = True
                    t = self.lead
                    if t is None or not t.busy:
                        self.wake.wait()
                    self.wake.clear()
                    self.parked = False
                    idle = 0
                continue
            idle = 0
            if t is not last or t.epoch != epoch:
                last, epoch = t, t.epoch
                continue
            with self.lock:
                if self.lead is t and t.busy and t.epoch == epoch:
                    try:
                        # Out of epoll (not just masked: a hangup would still show)
                        # until its thread is done with it.
                        self.ep.unregister(t.fd)
                        t.disarmed = True
                    except OSError:
                        pass  # closed just now
                    self.lead = None
                    self.standby.release()
            last = None

    def blocking(self):
        """Without epoll: one connection per thread, each waiting in recv."""
        while True:
            try:
                sock, _ = self.listener.accept()
            except InterruptedError:
                continue
            except OSError:
                # Out of descriptors, say: pause rather than spin, as accept does
                # with epoll; the connection waits in the listen queue.
                traceback.print_exc()
                time.sleep(0.1)
                continue
            try:
                conn = Conn(sock)
                while True:
                    self.serve(conn)
            except Gone:
                pass
            except Exception:
                traceback.print_exc()
            finally:
                sock.close()

    def serve(self, conn):
        """Reads once from conn and serves every request that came with it."""
        sock = conn.sock
        buf, start, end = conn.buf, conn.start, conn.end
        if start == end:
            start = 0
            try:
                end = sock.recv_into(buf)
            except OSError as e:
                raise Gone() from e
            if not end:
                raise Gone()
        while start != end:
            kind = None
            if end - start >= 5:
                kind, n = _unpack(buf, start)
                stop = start + 5 + n
                if stop <= end:
                    conn.start, conn.end = stop, end
                    payload = conn.view[start + 5:stop]
                else:
                    kind = None
            if kind is None:
                # Part of a frame: gantry sends the rest right away.
                conn.start, conn.end = start, end
                kind, payload = conn._frame_slow()
            if kind == frameRequest or kind == frameStream:  # others: leftovers of a body the app did not read
                self.request(conn, kind, payload)
            buf, start, end = conn.buf, conn.start, conn.end

    def request(self, conn, kind, payload):
        sock = conn.sock
        n = _u32(payload)[0]
        environ = _loads(payload[4:4 + n])
        stream = None
        if kind == frameRequest:
            environ["wsgi.input"] = _BytesIO(payload[4 + n:])
        else:
            stream = environ["wsgi.input"] = Input(conn)
        environ["wsgi.errors"] = self.errors
        environ["wsgi.file_wrapper"] = FileWrapper
        resp = Response(sock)
        result = None
        try:
            result = self.app(environ, resp.start_response)
            if (type(result) is list or getattr(result, "streaming", True) is False) and not resp.sent:
                # A list, or a response that says its body is already in memory
                # (Django's HttpResponse): one bytes object, one send, the whole
                # response in one frame run.
                body = b"".join(result)
                head = resp.head()
                try:
                    if body:
                        sock.sendall(_join((head, _pack(frameData, len(body)), body, _END)))
                    else:
                        sock.sendall(head + _END)
                except OSError as e:
                    raise Gone() from e
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
            raise
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                close(result, environ)
                raise
            log_exception(environ)
            close(result, environ)
            why = ("%s: %s" % (type(e).__name__, e)).encode("utf-8", "replace")[:1000]
            resp.send(_pack(frameError, len(why)) + why)
            if isinstance(e, MemoryError):
                # Past max_memory nothing in this process can be trusted to
                # allocate again: leave, and let gantry start a fresh worker.
                sys.stderr.write("gantry: the application ran out of memory; this worker exits\n")
                sys.stderr.flush()
                os._exit(EXIT_MEMORY)
            return
        close(result, environ)
        if stream is not None and not stream.eof:
            try:
                stream.drain()
            except OSError:
                pass


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
    # What the import built lives as long as the process: out of the collector's
    # sight, a full collection no longer walks Django's whole module graph.
    gc.collect()
    gc.freeze()
    worker = Worker(app, listener)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if worker.ep is not None:
        run = worker.thread
        if threads > 1:
            threading.Thread(target=worker.watch, daemon=True).start()
    else:
        run = worker.blocking
    for _ in range(threads):
        threading.Thread(target=run, daemon=True).start()
    os.write(4, b"ready\n")
    os.close(4)
    stop.wait()
    sys.stdout.flush()
    sys.stderr.flush()


if __name__ == "__main__":
    main()
