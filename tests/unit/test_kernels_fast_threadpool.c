/* test_kernels_fast_threadpool.c — the thread pool the fast kernels run on: every task of every
 * run is done exactly once and before hqi_threadpool_run returns, whatever the pool size, with
 * runs that follow each other at once (workers still polling or late from the previous run) and
 * runs with slow, uneven tasks; thread indices stay within the pool size. */
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
        cmocka_unit_test(a_null_pool_runs_everything_on_the_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
