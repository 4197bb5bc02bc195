//go:build python

// The C half of embedded WSGI: the interpreter's start, the _gantry module through
// which the bootstrap shim (shim.py) reaches gantry, and the calls a pool thread
// makes with its thread state. Everything else is Python (shim.py) or Go.

#include "pyembed.h"
#include "_cgo_export.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

// Per-module state: each interpreter imports its own _gantry (multi-phase init).
typedef struct {
	PyObject *gone;
} gmod;

static gmod *state(PyObject *m) { return (gmod *)PyModule_GetState(m); }

// forked is set in a child the app forked (os.fork in the main interpreter; in a
// sub-interpreter Python 3.11 aborts the child itself). The child is a copy of
// gantry with this one thread: it must not call into Go, whose other threads are
// gone, nor signal the parent's eventfd, and it exits once the app's call returns
// to gantry, rather than waiting for requests with gantry's listening sockets.
static volatile sig_atomic_t forked;

static void on_fork_child(void) { forked = 1; }

// gone raises _gantry.Gone: the request ended on gantry's side (the client left,
// it timed out, or the response was refused), so the app must stop.
static PyObject *gone(PyObject *m) {
	PyErr_SetString(state(m)->gone, "request no longer served by gantry");
	return NULL;
}

static int args_bytes(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, const char *name) {
	if (nargs != want) {
		PyErr_Format(PyExc_TypeError, "_gantry.%s takes %zd arguments", name, want);
		return -1;
	}
	return 0;
}

// head(h, marshal((status, headers)))
static PyObject *m_head(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
	if (forked) return gone(m);
	if (args_bytes(args, nargs, 2, "head") < 0) return NULL;
	long long h = PyLong_AsLongLong(args[0]);
	if (h == -1 && PyErr_Occurred()) return NULL;
	if (!PyBytes_Check(args[1])) return PyErr_Format(PyExc_TypeError, "head: bytes wanted");
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = goHead(h, PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]), NULL, 0);
	Py_END_ALLOW_THREADS
	if (rc) return gone(m);
	Py_RETURN_NONE;
}

// respond(h, head, body): the head and the whole body in one crossing.
static PyObject *m_respond(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
	if (forked) return gone(m);
	if (args_bytes(args, nargs, 3, "respond") < 0) return NULL;
	long long h = PyLong_AsLongLong(args[0]);
	if (h == -1 && PyErr_Occurred()) return NULL;
	if (!PyBytes_Check(args[1]) || !PyBytes_Check(args[2])) return PyErr_Format(PyExc_TypeError, "respond: bytes wanted");
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = goHead(h, PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]), PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2]));
	Py_END_ALLOW_THREADS
	if (rc) return gone(m);
	Py_RETURN_NONE;
}

// write(h, data)
static PyObject *m_write(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
	if (forked) return gone(m);
	if (args_bytes(args, nargs, 2, "write") < 0) return NULL;
	long long h = PyLong_AsLongLong(args[0]);
	if (h == -1 && PyErr_Occurred()) return NULL;
	Py_buffer b;
	if (PyObject_GetBuffer(args[1], &b, PyBUF_SIMPLE) < 0) return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = goWrite(h, b.buf, b.len);
	Py_END_ALLOW_THREADS
	PyBuffer_Release(&b);
	if (rc) return gone(m);
	Py_RETURN_NONE;
}

// read(h, n) -> bytes, b"" at the end of the body.
static PyObject *m_read(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
	if (forked) return gone(m);
	if (args_bytes(args, nargs, 2, "read") < 0) return NULL;
	long long h = PyLong_AsLongLong(args[0]);
	Py_ssize_t n = PyLong_AsSsize_t(args[1]);
	if (PyErr_Occurred()) return NULL;
	if (n < 0 || n > (1 << 24)) return PyErr_Format(PyExc_ValueError, "read: size %zd out of range", n);
	PyObject *out = PyBytes_FromStringAndSize(NULL, n);
	if (out == NULL) return NULL;
	long long got;
	Py_BEGIN_ALLOW_THREADS
	got = goRead(h, PyBytes_AS_STRING(out), n);
	Py_END_ALLOW_THREADS
	if (got == -1) {
		Py_DECREF(out);
		return gone(m);
	}
	if (got < 0) {
		Py_DECREF(out);
		return PyErr_Format(PyExc_OSError, "request body aborted");
	}
	if (got != n && _PyBytes_Resize(&out, (Py_ssize_t)got) < 0) return NULL;
	return out;
}

// sendfile(h, fd, offset): gantry sends the rest of the file.
static PyObject *m_sendfile(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
	if (forked) return gone(m);
	if (args_bytes(args, nargs, 3, "sendfile") < 0) return NULL;
	long long h = PyLong_AsLongLong(args[0]);
	int fd = PyLong_AsLong(args[1]);
	long long off = PyLong_AsLongLong(args[2]);
	if (PyErr_Occurred()) return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = goSendfile(h, fd, off);
	Py_END_ALLOW_THREADS
	if (rc) return gone(m);
	Py_RETURN_NONE;
}

// log(h, level, text): level 0 is the app's output, 1 the exception that failed
// the request (with its traceback), 2 an exception that is only logged.
static PyObject *m_log(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
	if (args_bytes(args, nargs, 3, "log") < 0) return NULL;
	long long h = PyLong_AsLongLong(args[0]);
	int level = PyLong_AsLong(args[1]);
	if (PyErr_Occurred()) return NULL;
	Py_ssize_t n;
	PyObject *escaped = NULL;
	const char *s = PyUnicode_AsUTF8AndSize(args[2], &n);
	if (s == NULL) {
		// Not valid UTF-8 (a lone surrogate, from surrogateescape): escaped, as
		// Python's own stderr does, rather than failing the app's print.
		if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return NULL;
		PyErr_Clear();
		escaped = PyUnicode_AsEncodedString(args[2], "utf-8", "backslashreplace");
		if (escaped == NULL) return NULL;
		s = PyBytes_AS_STRING(escaped);
		n = PyBytes_GET_SIZE(escaped);
	}
	if (forked) {
		// gantry's log is Go's: the child writes to the stderr it shares.
		while (n > 0) {
			ssize_t w = write(2, s, n);
			if (w < 0 && errno == EINTR) continue;
			if (w <= 0) break;
			s += w;
			n -= w;
		}
		Py_XDECREF(escaped);
		Py_RETURN_NONE;
	}
	Py_BEGIN_ALLOW_THREADS
	goLog(h, level, (char *)s, n);
	Py_END_ALLOW_THREADS
	Py_XDECREF(escaped);
	Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
	{"head", (PyCFunction)(void (*)(void))m_head, METH_FASTCALL, NULL},
	{"respond", (PyCFunction)(void (*)(void))m_respond, METH_FASTCALL, NULL},
	{"write", (PyCFunction)(void (*)(void))m_write, METH_FASTCALL, NULL},
	{"read", (PyCFunction)(void (*)(void))m_read, METH_FASTCALL, NULL},
	{"sendfile", (PyCFunction)(void (*)(void))m_sendfile, METH_FASTCALL, NULL},
	{"log", (PyCFunction)(void (*)(void))m_log, METH_FASTCALL, NULL},
	{NULL, NULL, 0, NULL},
};

static int mod_exec(PyObject *m) {
	gmod *st = state(m);
	st->gone = PyErr_NewException("_gantry.Gone", PyExc_BaseException, NULL);
	if (st->gone == NULL) return -1;
	Py_INCREF(st->gone);
	if (PyModule_AddObject(m, "Gone", st->gone) < 0) {
		Py_DECREF(st->gone);
		return -1;
	}
	return 0;
}

static int mod_traverse(PyObject *m, visitproc visit, void *arg) {
	Py_VISIT(state(m)->gone);
	return 0;
}

static int mod_clear(PyObject *m) {
	Py_CLEAR(state(m)->gone);
	return 0;
}

static PyModuleDef_Slot slots[] = {{Py_mod_exec, mod_exec}, {0, NULL}};

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT, "_gantry", NULL, sizeof(gmod), methods, slots, mod_traverse, mod_clear, NULL,
};

static PyObject *init_module(void) { return PyModuleDef_Init(&moddef); }

static char *status_error(PyStatus st) {
	const char *msg = st.err_msg ? st.err_msg : "unknown error";
	const char *fn = st.func ? st.func : "";
	size_t n = strlen(msg) + strlen(fn) + 8;
	char *s = malloc(n);
	if (s) snprintf(s, n, "%s%s%s", fn, *fn ? ": " : "", msg);
	return s;
}

// gantry_init starts the interpreter, isolated from the environment, leaving the
// signals to Go, and releases the GIL. Called once, on a locked thread.
int gantry_init(const char *exe, char **err) {
	if (PyImport_AppendInittab("_gantry", init_module) < 0) {
		*err = strdup("cannot register the _gantry module");
		return -1;
	}
	PyConfig c;
	PyConfig_InitIsolatedConfig(&c);
	c.install_signal_handlers = 0;
	c.parse_argv = 0;
	c.buffered_stdio = 0;
	PyStatus st = PyConfig_SetBytesString(&c, &c.program_name, exe);
	if (!PyStatus_Exception(st)) st = PyConfig_SetBytesString(&c, &c.executable, exe);
	if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&c);
	PyConfig_Clear(&c);
	if (PyStatus_Exception(st)) {
		*err = status_error(st);
		return -1;
	}
	PyEval_SaveThread();
	pthread_atfork(NULL, NULL, on_fork_child);
	return 0;
}

// gantry_new_thread makes the calling thread's state in the main interpreter.
PyThreadState *gantry_new_thread(void) { return PyThreadState_New(PyInterpreterState_Main()); }

static char *exception_text(void) {
	PyObject *type, *value, *tb;
	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	char *out = NULL;
	PyObject *mod = PyImport_ImportModule("traceback");
	if (mod && value) {
		PyObject *lines = PyObject_CallMethod(mod, "format_exception", "OOO", type, value, tb ? tb : Py_None);
		if (lines) {
			PyObject *empty = PyUnicode_FromString("");
			PyObject *s = empty ? PyUnicode_Join(empty, lines) : NULL;
			if (s) {
				const char *u = PyUnicode_AsUTF8(s);
				if (u) out = strdup(u);
			}
			Py_XDECREF(s);
			Py_XDECREF(empty);
			Py_DECREF(lines);
		}
	}
	Py_XDECREF(mod);
	PyErr_Clear();
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	return out ? out : strdup("unprintable Python exception");
}

// gantry_boot loads the shim and the application, in a new sub-interpreter when sub
// is set (else in the main one), and returns the shim's request function and the
// thread state it runs with. On failure err holds the traceback and no
// sub-interpreter is left behind.
int gantry_boot(PyThreadState *main_ts, int sub, const char *src, const char *args, Py_ssize_t nargs,
                PyThreadState **ts_out, PyObject **handle, char **err) {
	PyEval_RestoreThread(main_ts);
	PyThreadState *ts = main_ts;
	if (sub) {
		ts = Py_NewInterpreter();
		if (ts == NULL) {
			PyThreadState_Swap(main_ts);
			PyEval_SaveThread();
			*err = strdup("Py_NewInterpreter failed");
			return -1;
		}
	}
	int rc = -1;
	PyObject *globals = NULL, *code = NULL, *res = NULL, *list = NULL, *fn = NULL;
	globals = PyDict_New();
	if (globals == NULL || PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) < 0) goto fail;
	PyObject *name = PyUnicode_FromString("_gantry_shim");
	int bad = name == NULL || PyDict_SetItemString(globals, "__name__", name) < 0;
	Py_XDECREF(name);
	if (bad || PyDict_SetItemString(globals, "_SUB", sub ? Py_True : Py_False) < 0) goto fail;
	code = Py_CompileString(src, "<gantry shim>", Py_file_input);
	if (code == NULL) goto fail;
	res = PyEval_EvalCode(code, globals, globals);
	if (res == NULL) goto fail;
	list = PyList_New(0);
	if (list == NULL) goto fail;
	for (Py_ssize_t i = 0; i < nargs;) {
		size_t n = strlen(args + i);
		PyObject *s = PyUnicode_DecodeFSDefaultAndSize(args + i, n);
		if (s == NULL || PyList_Append(list, s) < 0) {
			Py_XDECREF(s);
			goto fail;
		}
		Py_DECREF(s);
		i += n + 1;
	}
	fn = PyDict_GetItemString(globals, "boot");
	if (fn == NULL) {
		PyErr_SetString(PyExc_RuntimeError, "shim has no boot()");
		goto fail;
	}
	*handle = PyObject_CallOneArg(fn, list);
	if (*handle == NULL) goto fail;
	rc = 0;
	*ts_out = ts;
fail:
	if (rc < 0) *err = exception_text();
	Py_XDECREF(globals);
	Py_XDECREF(code);
	Py_XDECREF(res);
	Py_XDECREF(list);
	if (rc < 0 && sub) {
		Py_EndInterpreter(ts);
		PyThreadState_Swap(main_ts);
	}
	PyEval_SaveThread();
	return rc;
}

// run_job serves one request with the GIL held, on the job's interpreter: environ
// is the marshal of the environ dict that daemon mode sends its workers; the body,
// when inline, is the whole request body.
static int run_job(gantry_job *j) {
	gantry_out *out = &j->out;
	out->nhead = out->nbody = 0;
	int rc = -1;
	PyObject *environ = PyMarshal_ReadObjectFromString(j->env, j->nenv);
	PyObject *b = NULL, *hh = NULL, *res = NULL;
	if (environ == NULL) goto out;
	if (j->inline_body) {
		b = PyBytes_FromStringAndSize(j->body, j->nbody);
	} else {
		b = Py_None;
		Py_INCREF(b);
	}
	hh = PyLong_FromLongLong(j->h);
	if (b == NULL || hh == NULL) goto out;
	PyObject *argv[3] = {hh, environ, b};
	res = PyObject_Vectorcall(j->handle, argv, 3, NULL);
	if (res != NULL) rc = 0;
	if (res != NULL && PyTuple_CheckExact(res) && PyTuple_GET_SIZE(res) == 2 &&
	    PyBytes_CheckExact(PyTuple_GET_ITEM(res, 0)) && PyBytes_CheckExact(PyTuple_GET_ITEM(res, 1))) {
		// (head, body): copied to the job's buffer, which gantry sends from once
		// the job is done, with no GIL held.
		PyObject *hd = PyTuple_GET_ITEM(res, 0), *bd = PyTuple_GET_ITEM(res, 1);
		Py_ssize_t nh = PyBytes_GET_SIZE(hd), nb = PyBytes_GET_SIZE(bd);
		if (nh + nb > out->cap) {
			char *nbuf = realloc(out->buf, nh + nb);
			if (nbuf == NULL) {
				rc = -1;
				PyErr_NoMemory();
				goto out;
			}
			out->buf = nbuf;
			out->cap = nh + nb;
		}
		memcpy(out->buf, PyBytes_AS_STRING(hd), nh);
		memcpy(out->buf + nh, PyBytes_AS_STRING(bd), nb);
		out->nhead = nh;
		out->nbody = nb;
	}
out:
	if (rc < 0) {
		// The shim catches the app's exceptions; this is the shim's own failure.
		PyErr_Print();
	}
	Py_XDECREF(environ);
	Py_XDECREF(b);
	Py_XDECREF(hh);
	Py_XDECREF(res);
	return rc;
}

gantry_pool *gantry_pool_new(int nthreads, int efd) {
	gantry_pool *p = calloc(1, sizeof *p);
	if (p == NULL) return NULL;
	p->to_go = calloc(nthreads, sizeof *p->to_go);
	p->busy = calloc(nthreads, sizeof *p->busy);
	p->served = calloc(nthreads, sizeof *p->served);
	if (p->to_go == NULL || p->busy == NULL || p->served == NULL) {
		free(p->to_go);
		free(p->busy);
		free(p->served);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->nthreads = nthreads;
	p->efd = efd;
	return p;
}

void gantry_pool_free(gantry_pool *p) {
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->to_go);
	free(p->busy);
	free(p->served);
	free(p);
}

gantry_job *gantry_job_new(void) { return calloc(1, sizeof(gantry_job)); }

void gantry_job_free(gantry_job *j) {
	free(j->env);
	free(j->body);
	free(j->out.buf);
	free(j);
}

// gantry_job_trim frees the body and response buffers of an idle job beyond keep.
void gantry_job_trim(gantry_job *j, Py_ssize_t keep) {
	if (j->bodycap > keep) {
		free(j->body);
		j->body = NULL;
		j->bodycap = 0;
	}
	if (j->out.cap > keep) {
		free(j->out.buf);
		j->out.buf = NULL;
		j->out.cap = 0;
	}
}

static int grow(char **buf, Py_ssize_t *cap, Py_ssize_t n) {
	if (n <= *cap) return 0;
	char *nb = realloc(*buf, n);
	if (nb == NULL) return -1;
	*buf = nb;
	*cap = n;
	return 0;
}

// wake makes sure one thread heads for the GIL while requests are queued, and only
// one: the threads would only contend for it, and the one that holds it takes the
// next request itself when it is done with its own. The one waiting takes over when
// the holder blocks (the GIL comes free) or after Python's switch interval. Called
// with mu held.
static void wake(gantry_pool *p) {
	if (p->head != NULL && p->idle > 0 && p->waking + p->seeking == 0) {
		p->waking++;
		pthread_cond_signal(&p->cv);
	}
}

// pop takes the next queued job for thread idx; called with mu held.
static gantry_job *pop(gantry_pool *p, int idx) {
	gantry_job *j = p->head;
	if (j == NULL) return NULL;
	p->head = j->next;
	if (p->head == NULL) p->tail = NULL;
	j->next = NULL;
	j->state = GANTRY_JOB_RUNNING;
	j->thread = idx;
	p->busy[idx] = 1;
	return j;
}

// gantry_post queues a request in job j, which is idle. The environ and body are
// copied: they are Go memory, which C must not keep.
int gantry_post(gantry_pool *p, gantry_job *j, PyInterpreterState *interp, PyThreadState **ts, PyObject *handle,
                long long h, const char *env, Py_ssize_t nenv, const char *body, Py_ssize_t nbody, int inline_body) {
	if (j->state != GANTRY_JOB_IDLE || grow(&j->env, &j->envcap, nenv) < 0 || grow(&j->body, &j->bodycap, nbody) < 0)
		return -1;
	memcpy(j->env, env, nenv);
	if (nbody > 0) memcpy(j->body, body, nbody);
	j->nenv = nenv;
	j->nbody = nbody;
	j->interp = interp;
	j->ts = ts;
	j->handle = handle;
	j->h = h;
	j->inline_body = inline_body;
	j->thread = -1;
	j->rc = 0;
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	j->state = GANTRY_JOB_QUEUED;
	if (p->tail) p->tail->next = j;
	else p->head = j;
	p->tail = j;
	wake(p);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

// gantry_cancel takes back a job that timed out: -2 if it was still queued (it is
// idle again, and never ran), -1 if it is done, else the thread running it.
int gantry_cancel(gantry_pool *p, gantry_job *j) {
	pthread_mutex_lock(&p->mu);
	int rc = -1;
	if (j->state == GANTRY_JOB_QUEUED) {
		gantry_job **pp = &p->head, *prev = NULL;
		while (*pp != j) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = j->next;
		if (p->tail == j) p->tail = prev;
		j->next = NULL;
		j->state = GANTRY_JOB_IDLE;
		rc = -2;
	} else if (j->state == GANTRY_JOB_RUNNING) {
		rc = j->thread;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

// gantry_take_done returns the jobs served since the last call, linked by next;
// they are idle again.
gantry_job *gantry_take_done(gantry_pool *p) {
	pthread_mutex_lock(&p->mu);
	gantry_job *d = p->done;
	p->done = p->done_tail = NULL;
	for (gantry_job *j = d; j != NULL; j = j->next) j->state = GANTRY_JOB_IDLE;
	pthread_mutex_unlock(&p->mu);
	return d;
}

// gantry_thread_busy tells whether thread idx runs a job, and how many it has run:
// both change together, so that a thread shown free has counted its last job.
int gantry_thread_busy(gantry_pool *p, int idx, unsigned long long *served) {
	pthread_mutex_lock(&p->mu);
	int b = p->busy[idx];
	*served = p->served[idx];
	pthread_mutex_unlock(&p->mu);
	return b;
}

// finish files j as done, telling gantry if the list was empty (else it has been
// told already and not yet taken the list), and takes the next job unless the
// thread is wanted in Go. Called with the GIL held.
static gantry_job *finish(gantry_pool *p, int idx, gantry_job *j) {
	pthread_mutex_lock(&p->mu);
	p->busy[idx] = 0;
	p->served[idx]++;
	j->state = GANTRY_JOB_DONE;
	int tell = p->done == NULL;
	if (p->done_tail) p->done_tail->next = j;
	else p->done = j;
	p->done_tail = j;
	gantry_job *next = p->to_go[idx] ? NULL : pop(p, idx);
	pthread_mutex_unlock(&p->mu);
	if (tell) {
		uint64_t one = 1;
		while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR) {
		}
	}
	return next;
}

// gantry_thread_run serves requests until gantry wants the thread back in Go. The
// thread waits here, in C, holding no P of Go's scheduler, so that handing it a
// request or taking its answer never moves a goroutine between OS threads. Once it
// holds the GIL it serves request after request while any is queued, switching
// thread state only when the interpreter changes.
void gantry_thread_run(gantry_pool *p, int idx, PyThreadState *main_ts) {
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->head == NULL && !p->to_go[idx]) {
			p->idle++;
			pthread_cond_wait(&p->cv, &p->mu);
			p->idle--;
			if (p->waking > 0) p->waking--;
		}
		if (p->to_go[idx]) {
			p->to_go[idx] = 0;
			wake(p);
			pthread_mutex_unlock(&p->mu);
			return;
		}
		p->seeking++;
		pthread_mutex_unlock(&p->mu);
		PyEval_RestoreThread(main_ts);
		pthread_mutex_lock(&p->mu);
		p->seeking--;
		gantry_job *j = pop(p, idx);
		wake(p);
		pthread_mutex_unlock(&p->mu);
		PyThreadState *cur = main_ts;
		while (j != NULL) {
			if (j->ts[idx] == NULL) j->ts[idx] = PyThreadState_New(j->interp);
			PyThreadState *ts = j->ts[idx];
			if (ts == NULL) {
				j->rc = -1;
			} else {
				if (ts != cur) {
					PyThreadState_Swap(ts);
					cur = ts;
				}
				j->rc = run_job(j);
			}
			if (forked) _exit(0); // the app's child, back from its call: see forked
			j = finish(p, idx, j);
		}
		if (cur != main_ts) PyThreadState_Swap(main_ts);
		PyEval_SaveThread();
		pthread_mutex_lock(&p->mu);
	}
}

// gantry_thread_to_go makes gantry_thread_run return once the thread is idle.
void gantry_thread_to_go(gantry_pool *p, int idx) {
	pthread_mutex_lock(&p->mu);
	p->to_go[idx] = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

// gantry_end_interp ends a sub-interpreter on the thread that made it (own): the
// other pool threads' states in it go first, as Py_EndInterpreter wants to be the
// last; then the thread is back on its main-interpreter state, GIL released. While
// a thread the app started still runs in it, the interpreter is left as it is
// (Py_EndInterpreter would abort the process, or wait for the thread): -1.
int gantry_end_interp(PyThreadState *own, PyObject *handle, PyThreadState **others, int n, PyThreadState *main_ts) {
	PyEval_RestoreThread(own);
	Py_XDECREF(handle);
	for (int i = 0; i < n; i++) {
		if (others[i] != NULL && others[i] != own) {
			PyThreadState_Clear(others[i]);
			PyThreadState_Delete(others[i]);
			others[i] = NULL;
		}
	}
	PyInterpreterState *interp = PyThreadState_GetInterpreter(own);
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts != NULL; ts = PyThreadState_Next(ts)) {
		if (ts != own) {
			PyEval_SaveThread();
			return -1;
		}
	}
	// The shim froze what the import built (gc.freeze); the collections that end
	// the interpreter skip frozen objects, which would stay in memory for good.
	PyObject *gc = PyImport_ImportModule("gc");
	PyObject *r = gc ? PyObject_CallMethod(gc, "unfreeze", NULL) : NULL;
	Py_XDECREF(r);
	Py_XDECREF(gc);
	PyErr_Clear();
	Py_EndInterpreter(own);
	PyThreadState_Swap(main_ts);
	PyEval_SaveThread();
	return 0;
}

// gantry_release_handle drops the reference to a main-interpreter app's function.
void gantry_release_handle(PyThreadState *ts, PyObject *handle) {
	PyEval_RestoreThread(ts);
	Py_XDECREF(handle);
	PyEval_SaveThread();
}

// gantry_drop_thread deletes the calling thread's main-interpreter state before its
// thread ends.
void gantry_drop_thread(PyThreadState *ts) {
	PyEval_RestoreThread(ts);
	PyThreadState_Clear(ts);
	PyThreadState_DeleteCurrent();
}
