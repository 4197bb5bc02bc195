//go:build python

#ifndef GANTRY_PYEMBED_H
#define GANTRY_PYEMBED_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>
#include <pthread.h>

int gantry_init(const char *exe, char **err);
PyThreadState *gantry_new_thread(void);
int gantry_boot(PyThreadState *main_ts, int sub, const char *src, const char *args, Py_ssize_t nargs,
                PyThreadState **ts_out, PyObject **handle, char **err);
// gantry_out is a pool thread's buffer for the response an app returns whole.
typedef struct {
	char *buf;
	Py_ssize_t cap, nhead, nbody;
} gantry_out;

// gantry_thread is a pool thread's mailbox: gantry posts a request, the thread
// (waiting in gantry_thread_run) serves it and signals done on the eventfd.
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int posted;   // a request waits
	int to_go;    // return to Go (admin work) when idle
	int efd;      // eventfd: one count per request served
	// the request
	PyInterpreterState *interp;
	PyThreadState **ts; // the thread's state in interp, made on first use
	PyObject *handle;
	long long h;
	char *env, *body;
	Py_ssize_t nenv, nbody, envcap, bodycap;
	int inline_body;
	int rc;
	gantry_out out;
} gantry_thread;

gantry_thread *gantry_thread_new(int efd);
void gantry_thread_free(gantry_thread *t);
int gantry_post(gantry_thread *t, PyInterpreterState *interp, PyThreadState **ts, PyObject *handle, long long h,
                const char *env, Py_ssize_t nenv, const char *body, Py_ssize_t nbody, int inline_body);
void gantry_thread_run(gantry_thread *t);
void gantry_thread_to_go(gantry_thread *t);
int gantry_end_interp(PyThreadState *own, PyObject *handle, PyThreadState **others, int n, PyThreadState *main_ts);
void gantry_release_handle(PyThreadState *ts, PyObject *handle);
void gantry_drop_thread(PyThreadState *ts);

#endif
