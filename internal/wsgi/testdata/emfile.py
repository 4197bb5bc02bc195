"""Runs worker.py's accept paths out of descriptors (EMFILE), for worker_test.go.

usage: python3 emfile.py WORKER.PY epoll|blocking

A client connects while the process is at its RLIMIT_NOFILE, so the worker's
accept fails with EMFILE. The worker must sleep before it tries again, not spin:
time.sleep is replaced by a recorder, and accept counts its calls. Prints
"slept N" and exits 0 when the worker slept; exits 1 if it retried without sleeping.
"""
import errno
import os
import resource
import select
import socket
import sys
import tempfile
import types

worker_py, mode = sys.argv[1], sys.argv[2]
if mode == "blocking":
    del select.epoll  # as on a system without epoll
ns = {"__name__": "gantry_wsgi_worker"}
exec(compile(open(worker_py).read(), worker_py, "exec"), ns)

sleeps = []


class Done(BaseException):
    pass


def sleep(d):
    sleeps.append(d)
    raise Done()


ns["time"] = types.SimpleNamespace(sleep=sleep)
accepts = 0


class Listener(socket.socket):
    def accept(self):
        global accepts
        accepts += 1
        if accepts > 50:
            print("accept retried %d times without sleeping" % accepts)
            sys.stdout.flush()
            os._exit(1)
        try:
            return super().accept()
        except OSError as e:
            if e.errno != errno.EMFILE:
                print("accept failed with %s, not EMFILE" % e)
                sys.stdout.flush()
                os._exit(1)
            raise


path = os.path.join(tempfile.mkdtemp(), "s")
listener = Listener(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(8)
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
w = ns["Worker"](lambda environ, start_response: [], listener)
quiet = open(os.devnull, "w")  # for the worker's traceback of the EMFILE
# Take every descriptor left under a small limit: the accepted socket finds none.
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
held = []
while True:
    try:
        held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as e:
        if e.errno != errno.EMFILE:
            raise
        break
client.connect(path)
sys.stderr = quiet
try:
    if mode == "blocking":
        w.blocking()
    else:
        w.accept()
except Done:
    pass
print("slept %d" % len(sleeps))
