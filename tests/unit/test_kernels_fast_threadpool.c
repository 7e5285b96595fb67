/* test_kernels_fast_threadpool.c — the thread pool the fast kernels run on: every task of every
 * run is done exactly once and before hqi_threadpool_run returns, whatever the pool size, with
 * runs that follow each other at once (workers still polling or late from the previous run) and
 * runs with slow, uneven tasks, runs after the workers went to sleep, and runs of more tasks than
 * the pool hands out one by one; thread indices stay within the pool size; on 2 threads the
 * caller's tasks are a prefix of the range and the worker's the rest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "util/threadpool.h"

#define MAX_TASKS 512

typedef struct counts {
    atomic_int hits[MAX_TASKS];
    atomic_int bad_thread;
    int threads;
    int slow_every; /* tasks whose index is a multiple of this sleep a little (0: none) */
} counts_t;

static void count_task(void *context, int64_t task, int thread)
{
    counts_t *c = context;
    if (thread < 0 || thread >= c->threads)
        atomic_fetch_add(&c->bad_thread, 1);
    if (c->slow_every && task % c->slow_every == 0) {
        struct timespec ts = {0, 200000}; /* 0.2 ms */
        nanosleep(&ts, NULL);
    }
    atomic_fetch_add(&c->hits[task], 1);
}

static void run_and_check(hqi_threadpool_t *pool, int threads, int64_t count, int slow_every)
{
    static counts_t c;
    memset(&c, 0, sizeof c);
    c.threads = threads;
    c.slow_every = slow_every;
    hqi_threadpool_run(pool, count, count_task, &c);
    for (int64_t t = 0; t < count; t++)
        if (atomic_load(&c.hits[t]) != 1)
            fail_msg("%d threads, %lld tasks: task %lld ran %d times", threads, (long long)count,
                     (long long)t, atomic_load(&c.hits[t]));
    for (int64_t t = count; t < MAX_TASKS; t++)
        assert_int_equal(atomic_load(&c.hits[t]), 0);
    assert_int_equal(atomic_load(&c.bad_thread), 0);
}

static void every_task_runs_once_in_back_to_back_runs_of_any_size(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 4; threads++) {
        hqi_threadpool_t *pool = NULL;
        assert_int_equal(hqi_threadpool_create(threads, &pool, NULL), HQ_OK);
        assert_int_equal(hqi_threadpool_size(pool), threads);
        uint32_t rng = 77u + (uint32_t)threads;
        for (int run = 0; run < 3000; run++) {
            rng = rng * 1664525u + 1013904223u;
            run_and_check(pool, threads, 1 + (int64_t)((rng >> 8) % 64), 0);
        }
        hqi_threadpool_destroy(pool);
    }
}

static void slow_uneven_tasks_are_all_waited_for(void **state)
{
    (void)state;
    for (int threads = 2; threads <= 3; threads++) {
        hqi_threadpool_t *pool = NULL;
        assert_int_equal(hqi_threadpool_create(threads, &pool, NULL), HQ_OK);
        for (int run = 0; run < 20; run++)
            run_and_check(pool, threads, MAX_TASKS / 2 + run, 7 + run % 5);
        hqi_threadpool_destroy(pool);
    }
}

/* Records which thread ran each task. */
typedef struct owners {
    atomic_int owner[MAX_TASKS]; /* thread + 1; 0 = not run */
    atomic_int runs;
} owners_t;

static void owner_task(void *context, int64_t task, int thread)
{
    owners_t *o = context;
    struct timespec ts = {0, 20000}; /* 20 us: long enough for both threads to take some */
    nanosleep(&ts, NULL);
    atomic_store(&o->owner[task], thread + 1);
    atomic_fetch_add(&o->runs, 1);
}

static void on_two_threads_the_caller_takes_the_front_and_the_worker_the_back(void **state)
{
    (void)state;
    hqi_threadpool_t *pool = NULL;
    assert_int_equal(hqi_threadpool_create(2, &pool, NULL), HQ_OK);
    static owners_t o;
    int worker_ran = 0;
    for (int run = 0; run < 20; run++) {
        memset(&o, 0, sizeof o);
        const int count = 64;
        hqi_threadpool_run(pool, count, owner_task, &o);
        assert_int_equal(atomic_load(&o.runs), count);
        /* the owners read 1 .. 1 2 .. 2: thread 0 a prefix, thread 1 the rest */
        int changes = 0;
        for (int t = 1; t < count; t++)
            changes += atomic_load(&o.owner[t]) != atomic_load(&o.owner[t - 1]);
        if (changes > 1 || atomic_load(&o.owner[0]) != 1)
            fail_msg("run %d: thread 0 did not take a prefix of the tasks", run);
        worker_ran |= atomic_load(&o.owner[count - 1]) == 2;
    }
    /* a worker that polls took part at least once in 20 runs of 64 x 20 us (a loaded machine
     * may deny it a CPU in some of them) */
    assert_true(worker_ran);
    hqi_threadpool_destroy(pool);
}

static void workers_that_went_to_sleep_take_part_again(void **state)
{
    (void)state;
    for (int threads = 2; threads <= 3; threads++) {
        hqi_threadpool_t *pool = NULL;
        assert_int_equal(hqi_threadpool_create(threads, &pool, NULL), HQ_OK);
        for (int run = 0; run < 6; run++) {
            struct timespec idle = {0, 2000000}; /* 2 ms: past the workers' polls */
            nanosleep(&idle, NULL);
            if (run % 2)
                hqi_threadpool_wake(pool);
            run_and_check(pool, threads, 40 + run, 9);
        }
        hqi_threadpool_destroy(pool);
    }
    hqi_threadpool_wake(NULL);
}

typedef struct many {
    unsigned char *hits;
    atomic_int bad;
} many_t;

static void many_task(void *context, int64_t task, int thread)
{
    (void)thread;
    many_t *m = context;
    if (m->hits[task]++) /* each task is one thread's: a second visit is the bug */
        atomic_fetch_add(&m->bad, 1);
}

static void a_run_of_more_tasks_than_the_ticket_holds_runs_each_once(void **state)
{
    (void)state;
    const int64_t count = (INT64_C(1) << 20) * 3 + 12345;
    hqi_threadpool_t *pool = NULL;
    assert_int_equal(hqi_threadpool_create(2, &pool, NULL), HQ_OK);
    many_t m = {calloc((size_t)count, 1), 0};
    assert_non_null(m.hits);
    hqi_threadpool_run(pool, count, many_task, &m);
    assert_int_equal(atomic_load(&m.bad), 0);
    for (int64_t t = 0; t < count; t++)
        if (m.hits[t] != 1)
            fail_msg("task %lld ran %d times", (long long)t, m.hits[t]);
    free(m.hits);
    hqi_threadpool_destroy(pool);
}

static void a_null_pool_runs_everything_on_the_caller(void **state)
{
    (void)state;
    run_and_check(NULL, 1, 100, 0);
    assert_int_equal(hqi_threadpool_size(NULL), 1);
    hqi_threadpool_t *pool = (hqi_threadpool_t *)1;
    assert_int_not_equal(hqi_threadpool_create(0, &pool, NULL), HQ_OK);
    assert_null(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_task_runs_once_in_back_to_back_runs_of_any_size),
        cmocka_unit_test(slow_uneven_tasks_are_all_waited_for),
        cmocka_unit_test(on_two_threads_the_caller_takes_the_front_and_the_worker_the_back),
        cmocka_unit_test(workers_that_went_to_sleep_take_part_again),
        cmocka_unit_test(a_run_of_more_tasks_than_the_ticket_holds_runs_each_once),
        cmocka_unit_test(a_null_pool_runs_everything_on_the_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
