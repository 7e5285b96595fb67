/* threadpool.c — the fixed pthread pool of threadpool.h: workers sleep on a condition variable
 * between runs and pull task indices from an atomic counter during a run. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "util/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "util/util.h"

struct hqi_threadpool {
    int threads;        /* the caller's thread included */
    pthread_t *workers; /* threads - 1 */
    int started;        /* workers actually started */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a new run (generation changed) or stop */
    pthread_cond_t done; /* a worker finished its share of the run */
    uint64_t generation; /* bumped by every run; guarded by lock */
    int finished;        /* workers done with the current generation; guarded by lock */
    int stop;            /* guarded by lock */
    /* the current run */
    hqi_task_fn fn;
    void *context;
    int64_t count;
    atomic_int_fast64_t next; /* next task to hand out */
};

typedef struct worker_arg {
    hqi_threadpool_t *pool;
    int thread;
} worker_arg_t;

static void drain(hqi_threadpool_t *pool, int thread)
{
    for (;;) {
        int64_t task = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
        if (task >= pool->count)
            return;
        pool->fn(pool->context, task, thread);
    }
}

static void *worker_main(void *raw)
{
    worker_arg_t arg = *(worker_arg_t *)raw;
    free(raw);
    hqi_threadpool_t *pool = arg.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stop && pool->generation == seen)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->stop)
            break;
        seen = pool->generation;
        pthread_mutex_unlock(&pool->lock);
        drain(pool, arg.thread);
        pthread_mutex_lock(&pool->lock);
        pool->finished++;
        pthread_cond_signal(&pool->done);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

hq_status_t hqi_threadpool_create(int threads, hqi_threadpool_t **out, hq_error_t *err)
{
    if (!out)
        return hqi_error(err, HQ_ERR_ARGUMENT, "threadpool: out is NULL");
    *out = NULL;
    if (threads < 1 || threads > HQI_THREADS_MAX)
        return hqi_error(err, HQ_ERR_ARGUMENT, "threadpool: %d threads, need 1 to %d", threads,
                         HQI_THREADS_MAX);
    hqi_threadpool_t *pool = calloc(1, sizeof *pool);
    if (!pool)
        return hqi_nomem(err, "threadpool");
    pool->threads = threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->next, 0);
    if (threads > 1) {
        pool->workers = calloc((size_t)threads - 1, sizeof *pool->workers);
        if (!pool->workers) {
            hqi_threadpool_destroy(pool);
            return hqi_nomem(err, "threadpool");
        }
    }
    for (int t = 1; t < threads; t++) {
        worker_arg_t *arg = malloc(sizeof *arg);
        if (!arg) {
            hqi_threadpool_destroy(pool);
            return hqi_nomem(err, "threadpool");
        }
        arg->pool = pool;
        arg->thread = t;
        if (pthread_create(&pool->workers[t - 1], NULL, worker_main, arg) != 0) {
            free(arg);
            hqi_threadpool_destroy(pool);
            return hqi_error(err, HQ_ERR_NOMEM, "threadpool: cannot start thread %d of %d", t + 1,
                             threads);
        }
        pool->started++;
    }
    *out = pool;
    return HQ_OK;
}

void hqi_threadpool_destroy(hqi_threadpool_t *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int t = 0; t < pool->started; t++)
        pthread_join(pool->workers[t], NULL);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool);
}

int hqi_threadpool_size(const hqi_threadpool_t *pool)
{
    return pool ? pool->threads : 1;
}

void hqi_threadpool_run(hqi_threadpool_t *pool, int64_t count, hqi_task_fn fn, void *context)
{
    if (count <= 0 || !fn)
        return;
    if (!pool || pool->started == 0 || count == 1) {
        for (int64_t task = 0; task < count; task++)
            fn(context, task, 0);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->context = context;
    pool->count = count;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    pool->finished = 0;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    drain(pool, 0);
    pthread_mutex_lock(&pool->lock);
    while (pool->finished < pool->started)
        pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

int hqi_default_threads(void)
{
    const char *env = getenv("HQ_THREADS");
    if (env && *env) {
        char *end = NULL;
        long value = strtol(env, &end, 10);
        if (end && !*end && value >= 1 && value <= HQI_THREADS_MAX)
            return (int)value;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int count = CPU_COUNT(&set);
        if (count >= 1)
            return count > HQI_THREADS_MAX ? HQI_THREADS_MAX : count;
    }
    return 1;
}
