//go:build python

#ifndef GANTRY_PYEMBED_H
#define GANTRY_PYEMBED_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>

int gantry_init(const char *exe, char **err);
PyThreadState *gantry_new_thread(void);
int gantry_boot(PyThreadState *main_ts, int sub, const char *src, const char *args, Py_ssize_t nargs,
                PyThreadState **ts_out, PyObject **handle, char **err);
PyThreadState *gantry_thread_state(PyThreadState *any);
// gantry_out is a pool thread's buffer for the response an app returns whole.
typedef struct {
	char *buf;
	Py_ssize_t cap, nhead, nbody;
} gantry_out;

int gantry_call(PyThreadState *ts, PyObject *handle, long long h, const char *env, Py_ssize_t nenv,
                const char *body, Py_ssize_t nbody, int inline_body, gantry_out *out);
void gantry_end_interp(PyThreadState *own, PyObject *handle, PyThreadState **others, int n, PyThreadState *main_ts);
void gantry_release_handle(PyThreadState *ts, PyObject *handle);
void gantry_drop_thread(PyThreadState *ts);

#endif
