/* threadpool.c — the fixed pthread pool of threadpool.h: between runs workers poll for about
 * 40 us, then sleep on a condition variable; during a run every thread claims task indices from
 * an atomic ticket (CAS, tagged with the run's generation): thread 1 from the back, the others
 * from the front. The caller returns as soon as every task is done: a worker that was not
 * scheduled in time is not waited for (on a shared machine it may be milliseconds late; the
 * caller has run its tasks by then). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "util/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/util.h"

/* The task range of a run: `count` tasks of `per_task` original tasks each (the last maybe
 * fewer), so that a run of more than TASKS_MAX tasks fits the ticket. */
typedef struct run_desc {
    hqi_task_fn fn;
    void *context;
    int64_t count;    /* tasks handed out */
    int64_t per_task; /* original tasks per handed-out task */
    int64_t total;    /* original tasks */
} run_desc_t;

struct hqi_threadpool {
    int threads;        /* the caller's thread included */
    pthread_t *workers; /* threads - 1 */
    int started;        /* workers actually started */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a new run (generation changed) or stop */
    uint64_t generation; /* bumped by every run; guarded by lock, mirrored in `ticket` */
    uint64_t nudges;     /* bumped by hqi_threadpool_wake; guarded by lock */
    int sleepers;        /* workers waiting on `wake`; guarded by lock */
    int stop;            /* guarded by lock */
    run_desc_t run; /* the current run: set under lock before the generation is bumped */
    /* (generation << 2 * TASK_BITS) | (front << TASK_BITS) | back: the tasks not handed out yet
     * are front .. back - 1. A task is claimed by a CAS that checks the generation, so a worker
     * that wakes late, after its run is over, can never take a task of a later run; it simply
     * finds nothing left to do. */
    atomic_uint_fast64_t ticket;
    atomic_int_fast64_t completed;  /* tasks of the current run finished */
    atomic_uint_fast64_t published; /* generation, for workers spinning before they sleep */
};

#define TASK_BITS 20
#define TASK_MASK ((UINT64_C(1) << TASK_BITS) - 1)
#define GENERATION_MASK ((UINT64_C(1) << (64 - 2 * TASK_BITS)) - 1)
/* Most tasks a run hands out one by one; a run of more hands out blocks of consecutive tasks. */
#define TASKS_MAX ((int64_t)TASK_MASK)
enum {
    /* pause-loop polls (about 40 us) the caller waits for the other threads' last tasks before it
     * yields its CPU at every poll (the machine may be shared) */
    SPIN_POLLS = 4000,
    /* pause-loop polls (about 40 us) a worker polls for the next run before sleeping: layers
     * follow each other within microseconds. Not the runtime's 400 us (docs/deploy.md
     * "Threads"): on a loaded machine the emulator's caller is often descheduled, and a worker
     * polling that long burnt its CPU while the caller waited for one (mobilenet_v2, 2 threads,
     * batch 1, load average 18, farm-bench paired: 1.25x the wall time and 1.28x the CPU time
     * of 40 us polls, bench/results/2026-12-07-emulate-threads.txt); a run wakes sleeping workers
     * at its start instead (hqi_threadpool_wake). */
    IDLE_POLLS = 4000,
};

typedef struct worker_arg {
    hqi_threadpool_t *pool;
    int thread;
#ifdef __linux__
    int have_allowed;  /* `allowed` holds the CPUs the process may run on */
    cpu_set_t allowed;
#endif
} worker_arg_t;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static uint64_t ticket_of(uint64_t generation, int64_t front, int64_t back)
{
    return ((generation & GENERATION_MASK) << 2 * TASK_BITS) | ((uint64_t)front << TASK_BITS) |
           (uint64_t)back;
}

/* Runs tasks of generation `generation` until none is left. Thread 1 takes them from the back
 * and the others from the front: on 2 threads each keeps about the same rows from layer to
 * layer (the task index follows the rows in every kernel), so a layer mostly reads what its own
 * core wrote. */
static void drain(hqi_threadpool_t *pool, uint64_t generation, const run_desc_t *run, int thread)
{
    const bool from_back = thread == 1;
    uint64_t ticket = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    for (;;) {
        int64_t front = (int64_t)(ticket >> TASK_BITS & TASK_MASK);
        int64_t back = (int64_t)(ticket & TASK_MASK);
        if ((ticket >> 2 * TASK_BITS) != (generation & GENERATION_MASK) || front >= back)
            return;
        int64_t task = from_back ? back - 1 : front;
        uint64_t next = from_back ? ticket_of(generation, front, back - 1)
                                  : ticket_of(generation, front + 1, back);
        if (!atomic_compare_exchange_weak_explicit(&pool->ticket, &ticket, next,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue; /* ticket now holds the current value */
        int64_t first = task * run->per_task;
        int64_t end = first + run->per_task < run->total ? first + run->per_task : run->total;
        for (int64_t t = first; t < end; t++)
            run->fn(run->context, t, thread);
        atomic_fetch_add_explicit(&pool->completed, 1, memory_order_release);
        ticket = atomic_load_explicit(&pool->ticket, memory_order_acquire);
    }
}

static void *worker_main(void *raw)
{
    worker_arg_t arg = *(worker_arg_t *)raw;
    free(raw);
    hqi_threadpool_t *pool = arg.pool;
#ifdef __linux__
    if (arg.have_allowed) /* started away from the caller's CPU (start_worker): now free again */
        pthread_setaffinity_np(pthread_self(), sizeof arg.allowed, &arg.allowed);
#endif
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0;
             i < IDLE_POLLS && atomic_load_explicit(&pool->published, memory_order_acquire) == seen;
             i++)
            cpu_relax();
        pthread_mutex_lock(&pool->lock);
        uint64_t nudges = pool->nudges;
        while (!pool->stop && pool->generation == seen && pool->nudges == nudges) {
            pool->sleepers++;
            pthread_cond_wait(&pool->wake, &pool->lock);
            pool->sleepers--;
        }
        if (pool->stop) {
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        if (pool->generation == seen) { /* nudged: a run is coming, poll for it */
            pthread_mutex_unlock(&pool->lock);
            continue;
        }
        seen = pool->generation;
        run_desc_t run = pool->run;
        pthread_mutex_unlock(&pool->lock);
        drain(pool, seen, &run, arg.thread);
    }
    return NULL;
}

/* Starts worker `thread` on a CPU other than the caller's, when the process may use several:
 * a new thread is otherwise often placed on its creator's CPU, where it gets none of a run's
 * tasks until the scheduler moves it (the runtime measured resnet18 at 2 threads running as on
 * 1 thread in half the processes of a loaded machine). The worker then lets itself run
 * anywhere the process may (worker_main), so nothing stays pinned. */
static int start_worker(hqi_threadpool_t *pool, worker_arg_t *arg)
{
    pthread_attr_t attr, *attributes = NULL;
#ifdef __linux__
    arg->have_allowed = sched_getaffinity(0, sizeof arg->allowed, &arg->allowed) == 0;
    int here = sched_getcpu();
    if (arg->have_allowed && here >= 0 && here < CPU_SETSIZE && CPU_COUNT(&arg->allowed) > 1 &&
        pthread_attr_init(&attr) == 0) {
        attributes = &attr;
        cpu_set_t others = arg->allowed;
        CPU_CLR(here, &others);
        pthread_attr_setaffinity_np(&attr, sizeof others, &others);
    }
#endif
    int rc = pthread_create(&pool->workers[arg->thread - 1], attributes, worker_main, arg);
    if (attributes)
        pthread_attr_destroy(attributes);
    return rc;
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
        worker_arg_t *arg = calloc(1, sizeof *arg);
        if (!arg) {
            hqi_threadpool_destroy(pool);
            return hqi_nomem(err, "threadpool");
        }
        arg->pool = pool;
        arg->thread = t;
        if (start_worker(pool, arg) != 0) {
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
    run_desc_t run = {fn, context, count, 1, count};
    if (count > TASKS_MAX) {
        run.per_task = (count + TASKS_MAX - 1) / TASKS_MAX;
        run.count = (count + run.per_task - 1) / run.per_task;
    }
    pthread_mutex_lock(&pool->lock);
    pool->run = run;
    uint64_t generation = ++pool->generation;
    atomic_store_explicit(&pool->completed, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->ticket, ticket_of(generation, 0, run.count),
                          memory_order_release);
    atomic_store_explicit(&pool->published, generation, memory_order_release);
    if (pool->sleepers > 0)
        pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    drain(pool, generation, &run, 0);
    /* the tasks other threads still run: wait for them, politely when it takes long (the
     * machine may be shared); workers that never woke up hold no task and are not waited for */
    for (int spins = 0; atomic_load_explicit(&pool->completed, memory_order_acquire) < run.count;
         spins++) {
        if (spins < SPIN_POLLS)
            cpu_relax();
        else
            sched_yield();
    }
}

void hqi_threadpool_wake(hqi_threadpool_t *pool)
{
    if (!pool || pool->started == 0)
        return;
    pthread_mutex_lock(&pool->lock);
    if (pool->sleepers > 0) {
        pool->nudges++;
        pthread_cond_broadcast(&pool->wake);
    }
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
