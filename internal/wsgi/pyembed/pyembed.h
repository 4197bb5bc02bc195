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

// gantry_job is one request slot: gantry posts the request into it, a pool thread
// serves it and files it as done.
typedef struct gantry_job {
	struct gantry_job *next;
	PyInterpreterState *interp;
	PyThreadState **ts; // the interpreter's states, one per pool thread, made on first use
	PyObject *handle;
	long long h;
	char *env, *body;
	Py_ssize_t nenv, nbody, envcap, bodycap;
	int inline_body;
	int state;  // GANTRY_JOB_*
	int thread; // the pool thread that runs it; -1 while queued
	int rc;
	gantry_out out;
} gantry_job;

enum { GANTRY_JOB_IDLE, GANTRY_JOB_QUEUED, GANTRY_JOB_RUNNING, GANTRY_JOB_DONE };

// gantry_pool is the queue the pool's threads take requests from, and the list of
// requests served that gantry has yet to finish (an eventfd tells it of them).
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	gantry_job *head, *tail; // queued
	gantry_job *done, *done_tail;
	int efd;
	int nthreads;
	int idle;    // threads waiting on cv
	int waking;  // signalled, not yet back from the wait
	int seeking; // out of the wait, taking the GIL before a job
	int *to_go;  // per thread: return to Go (admin work) when idle
	int *busy;   // per thread: running a job
	unsigned long long *served; // per thread: jobs run
} gantry_pool;

gantry_pool *gantry_pool_new(int nthreads, int efd);
void gantry_pool_free(gantry_pool *p);
gantry_job *gantry_job_new(void);
void gantry_job_free(gantry_job *j);
void gantry_job_trim(gantry_job *j, Py_ssize_t keep);
int gantry_post(gantry_pool *p, gantry_job *j, PyInterpreterState *interp, PyThreadState **ts, PyObject *handle,
                long long h, const char *env, Py_ssize_t nenv, const char *body, Py_ssize_t nbody, int inline_body);
int gantry_cancel(gantry_pool *p, gantry_job *j);
gantry_job *gantry_take_done(gantry_pool *p);
int gantry_thread_busy(gantry_pool *p, int idx, unsigned long long *served);
void gantry_thread_run(gantry_pool *p, int idx, PyThreadState *main_ts);
void gantry_thread_to_go(gantry_pool *p, int idx);
int gantry_end_interp(PyThreadState *own, PyObject *handle, PyThreadState **others, int n, PyThreadState *main_ts);
void gantry_release_handle(PyThreadState *ts, PyObject *handle);
void gantry_drop_thread(PyThreadState *ts);

#endif
