/* threadpool.c — the fixed pthread pool of threadpool.h: between runs workers poll briefly, then
 * sleep on a condition variable; during a run every thread claims task indices from an atomic
 * ticket (CAS, tagged with the run's generation). The caller returns as soon as every task is
 * done: a worker that was not scheduled in time is not waited for (on a shared machine it may
 * be milliseconds late; the caller has run its tasks by then). */
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
    uint64_t generation; /* bumped by every run; guarded by lock, mirrored in `ticket` */
    int stop;            /* guarded by lock */
    /* the current run: set under lock before the generation is bumped */
    hqi_task_fn fn;
    void *context;
    int64_t count;
    /* (generation << TASK_BITS) | next task to hand out: a task is claimed by a CAS that
     * checks the generation, so a worker that wakes late, after its run is over, can never
     * take a task of a later run; it simply finds nothing left to do. */
    atomic_uint_fast64_t ticket;
    atomic_int_fast64_t completed;  /* tasks of the current run finished */
    atomic_uint_fast64_t published; /* generation, for workers spinning before they sleep */
};

#define TASK_BITS 40
#define TASK_MASK ((UINT64_C(1) << TASK_BITS) - 1)
/* Pause-loop iterations a worker polls for the next run before sleeping (~20-50 us): layers
 * follow each other within microseconds, and a futex wake-up costs more than that. */
#define SPIN_POLLS 4000

typedef struct worker_arg {
    hqi_threadpool_t *pool;
    int thread;
} worker_arg_t;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Runs tasks of generation `generation` until none is left. */
static void drain(hqi_threadpool_t *pool, uint64_t generation, hqi_task_fn fn, void *context,
                  int64_t count, int thread)
{
    uint64_t ticket = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    for (;;) {
        if ((ticket >> TASK_BITS) != (generation & ((UINT64_C(1) << (64 - TASK_BITS)) - 1)) ||
            (int64_t)(ticket & TASK_MASK) >= count)
            return;
        if (!atomic_compare_exchange_weak_explicit(&pool->ticket, &ticket, ticket + 1,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue; /* ticket now holds the current value */
        fn(context, (int64_t)(ticket & TASK_MASK), thread);
        atomic_fetch_add_explicit(&pool->completed, 1, memory_order_release);
        ticket = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    }
}

static void *worker_main(void *raw)
{
    worker_arg_t arg = *(worker_arg_t *)raw;
    free(raw);
    hqi_threadpool_t *pool = arg.pool;
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0;
             i < SPIN_POLLS && atomic_load_explicit(&pool->published, memory_order_acquire) == seen;
             i++)
            cpu_relax();
        pthread_mutex_lock(&pool->lock);
        while (!pool->stop && pool->generation == seen)
            pthread_cond_wait(&pool->wake, &pool->lock);
        if (pool->stop) {
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        seen = pool->generation;
        hqi_task_fn fn = pool->fn;
        void *context = pool->context;
        int64_t count = pool->count;
        pthread_mutex_unlock(&pool->lock);
        drain(pool, seen, fn, context, count, arg.thread);
    }
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
    atomic_init(&pool->ticket, 0);
    atomic_init(&pool->completed, 0);
    atomic_init(&pool->published, 0);
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
    uint64_t generation = ++pool->generation;
    atomic_store_explicit(&pool->completed, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->ticket,
                          (generation & ((UINT64_C(1) << (64 - TASK_BITS)) - 1)) << TASK_BITS,
                          memory_order_release);
    atomic_store_explicit(&pool->published, generation, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    drain(pool, generation, fn, context, count, 0);
    /* the tasks other threads still run: wait for them, politely when it takes long (the
     * machine may be shared); workers that never woke up hold no task and are not waited for */
    for (int spins = 0; atomic_load_explicit(&pool->completed, memory_order_acquire) < count;
         spins++) {
        if (spins < SPIN_POLLS)
            cpu_relax();
        else
            sched_yield();
    }
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
