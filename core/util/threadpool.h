/* threadpool.h — a small fixed pthread pool that runs "task i of n" loops.
 *
 * The caller's thread takes part as thread 0, so a pool of 1 thread starts no thread at all and a
 * NULL pool runs everything serially. Tasks are handed out dynamically (an atomic counter), so
 * which thread runs which task varies; callers that want results independent of the thread count
 * make every task write its own outputs with an arithmetic that does not depend on the
 * partition (the fast kernels do). Thread-private scratch is indexed by the `thread` argument. */
#ifndef HQ_CORE_UTIL_THREADPOOL_H
#define HQ_CORE_UTIL_THREADPOOL_H

#include <stdint.h>

#include "hq/common.h"

/* Most threads a pool accepts. */
#define HQI_THREADS_MAX 256

typedef struct hqi_threadpool hqi_threadpool_t;

/* Runs task `task` (0 .. count-1) on thread `thread` (0 .. hqi_threadpool_size - 1). */
typedef void (*hqi_task_fn)(void *context, int64_t task, int thread);

/* Starts threads - 1 workers (threads 1 .. HQI_THREADS_MAX). The caller owns *out. */
hq_status_t hqi_threadpool_create(int threads, hqi_threadpool_t **out, hq_error_t *err);
/* Stops and joins the workers. Accepts NULL. Must not be called while a run is in progress. */
void hqi_threadpool_destroy(hqi_threadpool_t *pool);
/* Threads of the pool, the caller's included; 1 for NULL. */
int hqi_threadpool_size(const hqi_threadpool_t *pool);

/* Calls fn(context, task, thread) for every task in 0 .. count-1 and returns when all are done.
 * With a NULL pool, one thread, or count 1 the caller runs them in order. Thread 1 claims tasks
 * from the back of the range and the others from the front, so on 2 threads each keeps about the
 * same part of the range from run to run (which the caches like when task k of every run
 * touches the same rows). Not reentrant: a task must not call hqi_threadpool_run on the same
 * pool. */
void hqi_threadpool_run(hqi_threadpool_t *pool, int64_t count, hqi_task_fn fn, void *context);

/* Tells workers that sleep (they do after about 40 us without a run) to poll again: a caller
 * that is about to start a series of runs calls it first, so that the workers are awake when
 * the first run comes instead of paying a wake-up at it. Cheap when none sleeps; accepts NULL. */
void hqi_threadpool_wake(hqi_threadpool_t *pool);

/* The default thread count: HQ_THREADS when set to an integer in 1 .. HQI_THREADS_MAX, else the
 * CPUs this process may run on (sched_getaffinity), else 1. */
int hqi_default_threads(void);

#endif
