/* hqrt_schedule.c — runs a program's batch (hqrt_run): the order of the op calls (hqrt_i_run_op,
 * hqrt_run.c) over the samples and the threads. A thread runs its whole samples in groups, deep
 * conv/dense ops over all the group's samples in one call (docs/deploy.md "Batches"); threads
 * run groups of whole samples of a batch, or share one sample by claiming pieces of each op's
 * output rows; each output value is computed by exactly one call with the same arithmetic, so
 * every thread count and group size gives the same bytes. Also the profiling totals. */
#define _GNU_SOURCE /* Linux: sched_getcpu, pthread_attr_setaffinity_np */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hqrt_internal.h"

/* ---- threads --------------------------------------------------------------------------------- */

/* A run with several threads is one sequence of work items that the threads claim in order:
 * first the groups of the batch's whole samples (each run by its claimer in the claimer's own
 * arenas, no synchronization: run_group), then the steps of the shared samples (the rest: batch 1 at 2 threads, the
 * last of a batch of 3) in arena 0: copy the sample's inputs in, every op, copy its outputs
 * out. A step is cut into pieces (op output rows); a piece waits until every piece of the
 * earlier steps is done (one shared counter of finished items), so consecutive ops need no
 * barrier and a thread that holds no piece is never waited for: when the other thread is not
 * scheduled (a loaded machine), the caller's thread claims every piece itself and the run costs
 * what it costs on one thread. The workers stay alive between runs (the model owns them): they
 * poll for the next run for a while (IDLE_POLLS), then sleep; the caller wakes a sleeping worker
 * once per run, never per op. */

/* Median rates of the fast kernels on one thread over the ops of resnet18, mobilenet_v2/v3 and
 * PP-OCR det (AVX-512 VNNI machine, hqrt profiling), and the least work worth a piece of its own:
 * handing a step from one thread to the other costs about 2.5 us (the next op reads what the
 * other core wrote), measured as the time two threads add over one when every op runs whole. */
#define NS_PER_CONV_MAC 0.01
#define NS_PER_DW_MAC 0.2
#define NS_PER_ELEMENT 0.25
#define PIECE_MIN_NS 2500.0

enum {
    SPIN_POLLS = 4000,     /* pause-loop polls (about 40 us) before a waiter inside a run sleeps */
    IDLE_POLLS = 40000,    /* ... before a worker that finished its part of a run sleeps (about
                              400 us): a worker woken for every run of a loop of runs was often
                              placed on the caller's core and got none of the next run's pieces
                              (resnet18 at 2 threads, loaded machine: 6.7 ms, like 1 thread,
                              against 3.7 ms when it polls this long) */
    PIECES_PER_THREAD = 6  /* a stalled thread holds the others up for one piece, not half an op */
};

/* The claim word: the run's tag, the split step being handed out, and the pieces of that step
 * taken from its front and from its back. Thread 1 of two claims from the back, the others from
 * the front, so that each keeps the same rows from op to op (the next op reads what this core
 * wrote) and they meet wherever the work divides. A tag checked by every claim (CAS) keeps a
 * worker that wakes late from taking work of a later run. */
#define TAG_BITS 16
#define STEP_BITS 24
#define END_BITS 12
#define STEP_SHIFT (2 * END_BITS)
#define TAG_SHIFT (STEP_SHIFT + STEP_BITS)
#define END_MASK ((UINT64_C(1) << END_BITS) - 1)
#define STEP_MASK ((UINT64_C(1) << STEP_BITS) - 1)
#define TAG_MASK ((UINT64_C(1) << TAG_BITS) - 1)
_Static_assert(TAG_SHIFT + TAG_BITS == 64, "the claim word is 64 bits");
_Static_assert((int64_t)HQRT_MAX_THREADS * PIECES_PER_THREAD < (1 << END_BITS),
               "a step's pieces fit the claim word");

typedef struct run_shared {
    const hqrt_model_t *m;
    int64_t batch;
    const void *const *inputs;
    void *const *outputs;
    int64_t whole;           /* samples run whole: 0 .. whole - 1 */
    int64_t group;           /* ... in groups of this many samples (the last may have fewer) */
    int64_t groups;          /* the groups: whole / group rounded up */
    int64_t shared_steps;    /* steps of the shared samples: (batch - whole) * (ops + 2) */
    pthread_mutex_t lock;    /* guards failed_op */
    int failed_op;           /* -1, or the first op whose kernel refused its arguments */
    hqrt_i_op_time_t *times; /* profiling: op_count per thread, thread t's from t * op_count;
                                NULL: not profiling */
} run_shared_t;

/* The model's worker threads, started by the first run with several threads. */
struct hqrt_i_team {
    int threads; /* asked for, the caller's thread included */
    int started; /* workers running (threads - 1 unless pthread_create failed) */
    int running; /* started + 1: the threads that take part in a run */
    pthread_t workers[HQRT_MAX_THREADS];
    struct team_arg {
        struct hqrt_i_team *team;
        int thread;
    } args[HQRT_MAX_THREADS];
    const hqrt_model_t *m;
#ifdef __linux__
    cpu_set_t allowed; /* the CPUs the caller may run on when the team was made */
    bool have_allowed;
#endif
    int64_t *pieces; /* per op: pieces of a shared sample's op at `running` threads */
    int64_t *first;  /* op_count + 3: items before each step of a shared sample */
    pthread_mutex_t lock;
    pthread_cond_t wake;             /* a new run or stop */
    pthread_cond_t progress;         /* items finished while a thread sleeps in wait_done */
    uint64_t generation;             /* guarded by lock */
    bool stop;                       /* guarded by lock */
    run_shared_t *run;               /* guarded by lock: the current run (valid while it lasts) */
    int64_t run_whole, run_steps;    /* guarded by lock: its groups of whole samples and shared
                                        steps */
    atomic_uint_fast64_t published;  /* generation, for workers polling before they sleep */
    atomic_uint_fast64_t whole_next; /* (tag << 40) | next group of whole samples to hand out */
    atomic_uint_fast64_t claim;      /* the claim word above */
    atomic_int_fast64_t done;        /* items of the current run finished */
    atomic_int sleepers;             /* threads asleep (or about to be) in wait_done */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until the team's finished items reach `target`, or run `generation` is over (a worker
 * that was not scheduled may find the next run published): polls, then sleeps until a thread
 * that finishes an item wakes it (on a loaded machine the items' threads were not scheduled;
 * sleeping, not yielding, lets them run). Returns whether the target was reached. */
static bool wait_done(hqrt_i_team_t *team, int64_t target, uint64_t generation)
{
    for (int i = 0; i < SPIN_POLLS; i++) {
        if (atomic_load_explicit(&team->done, memory_order_acquire) >= target)
            return true;
        cpu_relax();
    }
    pthread_mutex_lock(&team->lock);
    atomic_fetch_add(&team->sleepers, 1); /* before the check: finish_item sees it or we see done */
    while (atomic_load(&team->done) < target && atomic_load(&team->published) == generation)
        pthread_cond_wait(&team->progress, &team->lock);
    atomic_fetch_sub(&team->sleepers, 1);
    pthread_mutex_unlock(&team->lock);
    return atomic_load(&team->done) >= target && atomic_load(&team->published) == generation;
}

/* Counts a finished item; wakes the threads asleep in wait_done, if any (rare: only when one
 * waited longer than its polls). */
static void finish_item(hqrt_i_team_t *team)
{
    atomic_fetch_add(&team->done, 1);
    if (atomic_load(&team->sleepers) > 0) {
        pthread_mutex_lock(&team->lock);
        pthread_cond_broadcast(&team->progress);
        pthread_mutex_unlock(&team->lock);
    }
}

static void copy_io(const run_shared_t *s, uint8_t *arena, int64_t sample, bool in)
{
    const hqrt_model_t *m = s->m;
    const hqx_header_t *h = m->header;
    uint32_t n = in ? h->input_count : h->output_count;
    for (uint32_t i = 0; i < n; i++) {
        const hqx_tensor_t *t = &m->tensors[m->ids[h->io_first + (in ? 0 : h->input_count) + i]];
        if (in)
            memcpy(arena + t->arena_offset,
                   (const uint8_t *)s->inputs[i] + (size_t)sample * t->bytes, t->bytes);
        else
            memcpy((uint8_t *)s->outputs[i] + (size_t)sample * t->bytes, arena + t->arena_offset,
                   t->bytes);
    }
}

static void record_failure(run_shared_t *s, int op)
{
    pthread_mutex_lock(&s->lock);
    if (s->failed_op < 0 || op < s->failed_op)
        s->failed_op = op;
    pthread_mutex_unlock(&s->lock);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Output rows [piece * rows / pieces, (piece + 1) * rows / pieces) of op i of the sample in
 * `arena`. `times` (NULL: not profiling) is this thread's per-op accumulators: the time of the
 * pieces it ran, and the sample counted by whoever ran piece 0. */
static void run_piece(run_shared_t *s, uint32_t i, int64_t piece, int64_t pieces, uint8_t *arena,
                      uint8_t *scratch, hqrt_i_op_time_t *times)
{
    const hqrt_model_t *m = s->m;
    const hqrt_i_prepared_t *prep = &m->prepared[i];
    int64_t rows = prep->fast ? prep->rows : 1;
    hqrt_i_op_call_t call = {.m = m,
                      .op = &m->ops[i],
                      .prep = prep,
                      .arena = arena,
                      .scratch = scratch,
                      .row_begin = rows * piece / pieces,
                      .row_end = rows * (piece + 1) / pieces};
    double start = times ? now_seconds() : 0.0;
    if (call.row_begin < call.row_end && hqrt_i_run_op(&call) != 0)
        record_failure(s, (int)i);
    if (times) {
        times[i].seconds += now_seconds() - start;
        times[i].runs += piece == 0;
    }
}

/* A grouped op (prep->grouped) on `count` samples, sample k in arena + k * arena_stride, in one
 * kernel call (profiling counts it as `count` runs). */
static void run_samples(run_shared_t *s, uint32_t i, int64_t count, uint8_t *arena,
                        uint8_t *scratch, hqrt_i_op_time_t *times)
{
    const hqrt_model_t *m = s->m;
    hqrt_i_op_call_t call = {.m = m,
                      .op = &m->ops[i],
                      .prep = &m->prepared[i],
                      .arena = arena,
                      .scratch = scratch,
                      .samples = count};
    double start = times ? now_seconds() : 0.0;
    if (hqrt_i_run_op(&call) != 0)
        record_failure(s, (int)i);
    if (times) {
        times[i].seconds += now_seconds() - start;
        times[i].runs += count;
    }
}

/* Whole samples [first, first + count) on this thread, sample k in arena + k * arena_stride:
 * each sample's ops before group_from one sample after the other, all in the last sample's
 * arena (the early, wide layers' activations stay in cache from sample to sample; the bytes the
 * later ops read, m->carry, are then copied to the sample's own arena), then ops [group_from,
 * group_to) op by op over the samples, a grouped op in one kernel call that reads its weights
 * once for all of them, then each sample's remaining ops (a detector's wide head) one sample
 * after the other again. Every op computes the bytes it computes alone. */
static void run_group(run_shared_t *s, int64_t first, int64_t count, uint8_t *arena,
                      uint8_t *scratch, hqrt_i_op_time_t *times)
{
    const hqrt_model_t *m = s->m;
    const size_t stride = m->arena_stride;
    const uint32_t ops = m->header->op_count;
    const uint32_t from = count > 1 ? m->group_from : ops, to = count > 1 ? m->group_to : ops;
    uint8_t *work = arena + (size_t)(count - 1) * stride;
    for (int64_t k = 0; k < count; k++) {
        copy_io(s, work, first + k, true);
        for (uint32_t i = 0; i < from; i++)
            run_piece(s, i, 0, 1, work, scratch, times);
        for (uint32_t c = 0; k < count - 1 && c < m->carry_count; c++)
            memcpy(arena + (size_t)k * stride + m->carry[c].offset, work + m->carry[c].offset,
                   m->carry[c].bytes);
    }
    for (uint32_t i = from; i < to; i++) {
        if (m->prepared[i].grouped) {
            run_samples(s, i, count, arena, scratch, times);
            continue;
        }
        for (int64_t k = 0; k < count; k++)
            run_piece(s, i, 0, 1, arena + (size_t)k * stride, scratch, times);
    }
    for (int64_t k = 0; k < count; k++) {
        for (uint32_t i = to; i < ops; i++)
            run_piece(s, i, 0, 1, arena + (size_t)k * stride, scratch, times);
        copy_io(s, arena + (size_t)k * stride, first + k, false);
    }
}

/* Takes the next group of whole samples of run `tag`: its index, or -1 when none is left. */
static int64_t claim_whole(hqrt_i_team_t *team, uint64_t tag, int64_t groups)
{
    uint64_t word = atomic_load_explicit(&team->whole_next, memory_order_acquire);
    for (;;) {
        if (word >> 40 != tag || (int64_t)(word & ((UINT64_C(1) << 40) - 1)) >= groups)
            return -1;
        if (atomic_compare_exchange_weak_explicit(&team->whole_next, &word, word + 1,
                                                  memory_order_acq_rel, memory_order_acquire))
            return (int64_t)(word & ((UINT64_C(1) << 40) - 1));
    }
}

/* Pieces of split step `step` (per shared sample: 0 copies in, 1 .. ops run op step - 1, ops +
 * 1 copies out). */
static int64_t step_pieces(const hqrt_i_team_t *team, int64_t step)
{
    uint32_t ops = team->m->header->op_count;
    int64_t k = step % (ops + 2);
    return k == 0 || k == ops + 1 ? 1 : team->pieces[k - 1];
}

/* Items a run finishes before split step `step` may start: its groups of whole samples and every
 * piece of the steps before it. */
static int64_t items_before(const hqrt_i_team_t *team, int64_t groups, int64_t step)
{
    const int64_t per_sample = team->m->header->op_count + 2;
    return groups + step / per_sample * team->first[per_sample] + team->first[step % per_sample];
}

/* Takes a piece of the shared steps of run `generation` for thread `thread`, once every item
 * before its step is done: sets *step and *piece and returns true, or false when every step is
 * handed out. A thread waits before it claims, never while it holds a piece, so a thread that
 * sleeps (or is not scheduled) while waiting holds nobody up. */
static bool claim_piece(hqrt_i_team_t *team, uint64_t generation, int64_t groups, int64_t steps,
                        int thread, int64_t *step, int64_t *piece)
{
    const bool back = thread == 1 && team->running == 2;
    const uint64_t tag = generation & TAG_MASK;
    uint64_t word = atomic_load_explicit(&team->claim, memory_order_acquire);
    for (;;) {
        if (word >> TAG_SHIFT != tag)
            return false;
        int64_t at = (int64_t)(word >> STEP_SHIFT & STEP_MASK);
        if (at >= steps)
            return false;
        int64_t front = (int64_t)(word >> END_BITS & END_MASK);
        int64_t taken_back = (int64_t)(word & END_MASK);
        int64_t pieces = step_pieces(team, at), before = items_before(team, groups, at);
        if (front + taken_back < pieces &&
            atomic_load_explicit(&team->done, memory_order_acquire) < before) {
            if (!wait_done(team, before, generation))
                return false;
            word = atomic_load_explicit(&team->claim, memory_order_acquire);
            continue;
        }
        uint64_t next;
        if (front + taken_back >= pieces) /* this step is all handed out: open the next one */
            next = (tag << TAG_SHIFT) | (uint64_t)(at + 1) << STEP_SHIFT;
        else
            next = back ? word + 1 : word + (UINT64_C(1) << END_BITS);
        if (!atomic_compare_exchange_weak_explicit(&team->claim, &word, next,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        if (front + taken_back >= pieces) {
            word = next;
            continue;
        }
        *step = at;
        *piece = back ? pieces - 1 - taken_back : front;
        return true;
    }
}

/* Thread `thread`'s part of run `tag`: groups of whole samples (`groups` of them) while any is
 * left, each in the thread's own arenas, then pieces of the shared steps. `s` is touched only
 * after a successful claim (the caller is still inside the run then: it waits for every claimed
 * item), so a worker that wakes after the run is over reads nothing of it. */
static void take_part(hqrt_i_team_t *team, run_shared_t *s, uint64_t generation, int64_t groups,
                      int64_t steps, int thread)
{
    const uint64_t tag = generation & TAG_MASK;
    const hqrt_model_t *m = team->m;
    const uint32_t ops = m->header->op_count;
    uint8_t *scratch = m->scratch + (size_t)thread * m->scratch_size;
    for (int64_t g; (g = claim_whole(team, tag, groups)) >= 0;) {
        hqrt_i_op_time_t *times = s->times ? s->times + (size_t)thread * ops : NULL;
        const int64_t first = g * s->group;
        const int64_t count = s->whole - first < s->group ? s->whole - first : s->group;
        run_group(s, first, count, m->arena + (size_t)thread * (size_t)s->group * m->arena_stride,
                  scratch, times);
        finish_item(team);
    }
    int64_t step, piece;
    while (claim_piece(team, generation, groups, steps, thread, &step, &piece)) {
        hqrt_i_op_time_t *times = s->times ? s->times + (size_t)thread * ops : NULL;
        int64_t sample = step / (ops + 2), k = step % (ops + 2);
        if (k == 0)
            copy_io(s, m->arena, s->whole + sample, true);
        else if (k == ops + 1)
            copy_io(s, m->arena, s->whole + sample, false);
        else
            run_piece(s, (uint32_t)(k - 1), piece, team->pieces[k - 1], m->arena, scratch, times);
        finish_item(team);
    }
}

static void *team_main(void *arg)
{
    hqrt_i_team_t *team = ((struct team_arg *)arg)->team;
    const int thread = ((struct team_arg *)arg)->thread;
#ifdef __linux__
    if (team->have_allowed) /* started away from the caller's CPU (start_worker): now free again */
        pthread_setaffinity_np(pthread_self(), sizeof team->allowed, &team->allowed);
#endif
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < IDLE_POLLS &&
                        atomic_load_explicit(&team->published, memory_order_acquire) == seen;
             i++)
            cpu_relax();
        pthread_mutex_lock(&team->lock);
        while (!team->stop && team->generation == seen)
            pthread_cond_wait(&team->wake, &team->lock);
        if (team->stop) {
            pthread_mutex_unlock(&team->lock);
            return NULL;
        }
        seen = team->generation;
        run_shared_t *s = team->run;
        int64_t groups = team->run_whole, steps = team->run_steps;
        pthread_mutex_unlock(&team->lock);
        take_part(team, s, seen, groups, steps, thread);
    }
}

/* Estimated single-thread nanoseconds of op i's fast kernel, from its multiply-adds (conv,
 * dense, depthwise) or output elements (maxpool, elementwise, deconv) at the rates measured for
 * each kind (docs/deploy.md "Threads"); only compared with PIECE_MIN_NS. */
static double op_cost_ns(const hqrt_model_t *m, uint32_t i)
{
    const hqrt_i_prepared_t *prep = &m->prepared[i];
    const hqx_op_t *op = &m->ops[i];
    const hqx_tensor_t *to = &m->tensors[m->ids[op->outputs_first]];
    double elements = (double)to->h * to->w * to->c;
    if (op->code == HQX_OP_CONV || op->code == HQX_OP_DENSE) {
        double macs = elements * (double)(prep->depth > 0 ? prep->depth : 1);
        const hqx_conv_params_t *p = hqrt_i_params(m, op);
        return macs * (op->code == HQX_OP_CONV && p->groups > 1 ? NS_PER_DW_MAC : NS_PER_CONV_MAC);
    }
    return elements * NS_PER_ELEMENT;
}

/* Pieces op i of a shared sample is cut into at `threads` threads: several per thread (see
 * PIECES_PER_THREAD), at least min_rows rows each (a VNNI conv streams its weights once per
 * piece), at least PIECE_MIN_NS of work each, so that an op too small to share runs whole on one
 * thread. Reference kernels run whole. */
static int64_t piece_count(const hqrt_model_t *m, uint32_t i, int threads)
{
    const hqrt_i_prepared_t *prep = &m->prepared[i];
    if (!prep->fast || threads <= 1)
        return 1;
    int64_t most = prep->rows / (prep->min_rows > 1 ? prep->min_rows : 1);
    int64_t want = (int64_t)threads * PIECES_PER_THREAD;
    double worth = op_cost_ns(m, i) / PIECE_MIN_NS;
    if (worth < (double)want)
        want = (int64_t)worth;
    return most < want ? (most < 1 ? 1 : most) : (want < 1 ? 1 : want);
}

/* Starts worker `thread` on a CPU other than the caller's, when it may run elsewhere: started
 * anywhere, it was often put on the caller's CPU and kept there for the whole process (half the
 * processes of a loaded machine ran resnet18 at 2 threads in 7 ms, as on 1 thread, the others in
 * 3.5 ms; started elsewhere, all ran in 3.5 ms). The worker then lets itself run anywhere the
 * caller may (team_main), so nothing stays pinned. */
static int start_worker(hqrt_i_team_t *team, int thread)
{
    pthread_attr_t attr, *pa = NULL;
#ifdef __linux__
    cpu_set_t others;
    int here = sched_getcpu();
    if (team->have_allowed && here >= 0 && here < CPU_SETSIZE && CPU_COUNT(&team->allowed) > 1 &&
        pthread_attr_init(&attr) == 0) {
        pa = &attr;
        others = team->allowed;
        CPU_CLR(here, &others);
        pthread_attr_setaffinity_np(&attr, sizeof others, &others);
    }
#endif
    int rc = pthread_create(&team->workers[team->started], pa, team_main, &team->args[thread]);
    if (pa)
        pthread_attr_destroy(pa);
    return rc;
}

void hqrt_i_team_destroy(hqrt_i_team_t *team)
{
    if (!team)
        return;
    pthread_mutex_lock(&team->lock);
    team->stop = true;
    atomic_store_explicit(&team->published, team->generation + 1, memory_order_release);
    pthread_cond_broadcast(&team->wake);
    pthread_mutex_unlock(&team->lock);
    for (int t = 0; t < team->started; t++)
        pthread_join(team->workers[t], NULL);
    pthread_cond_destroy(&team->wake);
    pthread_cond_destroy(&team->progress);
    pthread_mutex_destroy(&team->lock);
    free(team->pieces);
    free(team->first);
    free(team);
}

/* The model's team of `threads` threads (the caller's included), made or remade when the
 * count changes; NULL when out of memory. A worker that cannot start only shrinks the team. */
static hqrt_i_team_t *team_for(hqrt_model_t *m, int threads)
{
    if (m->team && m->team->threads == threads)
        return m->team;
    hqrt_i_team_destroy(m->team);
    m->team = NULL;
    const uint32_t ops = m->header->op_count;
    hqrt_i_team_t *team = calloc(1, sizeof *team);
    if (!team)
        return NULL;
    team->m = m;
    team->pieces = malloc((ops ? ops : 1) * sizeof *team->pieces);
    team->first = malloc((ops + 3) * sizeof *team->first);
    if (!team->pieces || !team->first) {
        free(team->pieces);
        free(team->first);
        free(team);
        return NULL;
    }
    pthread_mutex_init(&team->lock, NULL);
    pthread_cond_init(&team->wake, NULL);
    pthread_cond_init(&team->progress, NULL);
    atomic_init(&team->sleepers, 0);
    atomic_init(&team->published, 0);
    atomic_init(&team->whole_next, 0);
    atomic_init(&team->claim, 0);
    atomic_init(&team->done, 0);
#ifdef __linux__
    team->have_allowed = sched_getaffinity(0, sizeof team->allowed, &team->allowed) == 0;
#endif
    /* the kernels cache the CPU's vector ISA at their first call, in a plain static: ask once
     * here, before any worker starts, so that two threads never fill it at the same time */
    (void)hqrt_i_vector_isa();
    for (int t = 1; t < threads; t++) {
        team->args[t] = (struct team_arg){team, t};
        if (start_worker(team, t) != 0)
            break;
        team->started++;
    }
    team->threads = threads; /* a shrunk team is not remade at every run */
    team->running = team->started + 1;
    team->first[0] = 0;
    for (uint32_t i = 0; i < ops + 2; i++) {
        int64_t pieces = 1;
        if (i >= 1 && i <= ops)
            pieces = team->pieces[i - 1] = piece_count(m, i - 1, team->running);
        team->first[i + 1] = team->first[i] + pieces;
    }
    m->team = team;
    return team;
}

static hqrt_status_t ensure_buffers(hqrt_model_t *model, int threads, int arenas, hqrt_error_t *err)
{
    const hqx_header_t *h = model->header;
    if (model->arena_count < arenas) {
        free(model->arena);
        model->arena_count = 0;
        size_t stride = (size_t)(h->arena_size + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN +
                        (HQRT_ARENA_SLACK + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN;
        model->arena = aligned_alloc(HQX_ALIGN, stride * (size_t)arenas);
        if (!model->arena)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM,
                               "%s: out of memory for %d arena(s) of %llu bytes", model->name,
                               arenas, (unsigned long long)h->arena_size);
        memset(model->arena, 0, stride * (size_t)arenas); /* the slack is read, so defined */
        model->arena_stride = stride;
        model->arena_count = arenas;
    }
    if (model->scratch_threads < threads) {
        free(model->scratch);
        model->scratch_threads = 0;
        size_t size = model->scratch_size * (size_t)threads;
        size = (size + HQX_ALIGN - 1) / HQX_ALIGN * HQX_ALIGN;
        model->scratch = aligned_alloc(HQX_ALIGN, size ? size : HQX_ALIGN);
        if (!model->scratch)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory for kernel scratch",
                               model->name);
        model->scratch_threads = threads;
    }
    return HQRT_OK;
}

/* The run on the team: publish it, take part as thread 0, wait for every item: the groups of
 * whole samples (hqrt_run), then the shared samples' steps. */
static void run_on_team(hqrt_i_team_t *team, run_shared_t *s)
{
    const uint32_t ops = s->m->header->op_count;
    s->shared_steps = (s->batch - s->whole) * (ops + 2);
    const int64_t items = s->groups + (s->batch - s->whole) * team->first[ops + 2];
    pthread_mutex_lock(&team->lock);
    uint64_t generation = ++team->generation, tag = generation & TAG_MASK;
    team->run = s;
    team->run_whole = s->groups;
    team->run_steps = s->shared_steps;
    atomic_store_explicit(&team->done, 0, memory_order_relaxed);
    atomic_store_explicit(&team->whole_next, tag << 40, memory_order_relaxed);
    atomic_store_explicit(&team->claim, tag << TAG_SHIFT, memory_order_release);
    atomic_store_explicit(&team->published, generation, memory_order_release);
    pthread_cond_broadcast(&team->wake);
    pthread_cond_broadcast(&team->progress); /* a late worker still asleep in the last run */
    pthread_mutex_unlock(&team->lock);
    take_part(team, s, generation, s->groups, s->shared_steps, 0);
    /* items other threads still run; a worker that never woke holds none and is not waited for */
    wait_done(team, items, generation);
}

hqrt_status_t hqrt_run(hqrt_model_t *model, int64_t batch, const void *const *inputs,
                       void *const *outputs, const hqrt_run_options_t *options, hqrt_error_t *err)
{
    if (!model || batch < 0 || (batch && (!inputs || !outputs)))
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_run: invalid argument");
    const hqx_header_t *h = model->header;
    for (uint32_t i = 0; batch && i < h->input_count; i++)
        if (!inputs[i])
            return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "%s: input %u is NULL", model->name, i);
    for (uint32_t i = 0; batch && i < h->output_count; i++)
        if (!outputs[i])
            return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "%s: output %u is NULL", model->name, i);
    int threads = options && options->threads > 1 ? options->threads : 1;
    if (threads > HQRT_MAX_THREADS)
        threads = HQRT_MAX_THREADS;
    hqrt_i_team_t *team = threads > 1 && batch > 0 ? team_for(model, threads) : NULL;
    if (threads > 1 && batch > 0 && !team)
        return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory for threads", model->name);
    int running = team ? team->running : 1;
    /* whole samples while at least `running` are left (so every thread has one), the rest
     * shared; each thread's whole samples in groups of up to group_samples */
    const int64_t whole = batch / running * running;
    int64_t group = whole / running < model->group_samples ? whole / running : model->group_samples;
    group = group > 1 ? group : 1;
    hqrt_status_t st =
        ensure_buffers(model, running, batch >= running ? running * (int)group : 1, err);
    if (st != HQRT_OK)
        return st;
    run_shared_t s = {.m = model,
                      .batch = batch,
                      .inputs = inputs,
                      .outputs = outputs,
                      .whole = whole,
                      .group = group,
                      .groups = (whole + group - 1) / group,
                      .failed_op = -1};
    if (model->profiling) {
        s.times = calloc((size_t)running * h->op_count, sizeof *s.times);
        if (!s.times)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", model->name);
    }
    pthread_mutex_init(&s.lock, NULL);
    if (running > 1) {
        run_on_team(team, &s);
    } else {
        for (int64_t first = 0; first < batch; first += group)
            run_group(&s, first, batch - first < group ? batch - first : group, model->arena,
                      model->scratch, s.times);
    }
    pthread_mutex_destroy(&s.lock);
    for (int t = 0; s.times && t < running; t++)
        for (uint32_t i = 0; i < h->op_count; i++) {
            model->op_time[i].seconds += s.times[(size_t)t * h->op_count + i].seconds;
            model->op_time[i].runs += s.times[(size_t)t * h->op_count + i].runs;
        }
    free(s.times);
    if (s.failed_op >= 0)
        return hqrt_i_fail(err, HQRT_ERR_FORMAT, "%s: layer %s: kernel refused its arguments",
                           model->name, model->strings + model->ops[s.failed_op].name);
    return HQRT_OK;
}

/* ---- profiling ------------------------------------------------------------------------------ */

hqrt_status_t hqrt_set_profiling(hqrt_model_t *model, int on, hqrt_error_t *err)
{
    if (!model)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_set_profiling: NULL model");
    if (on && !model->op_time) {
        model->op_time = calloc(model->header->op_count, sizeof *model->op_time);
        if (!model->op_time)
            return hqrt_i_fail(err, HQRT_ERR_NOMEM, "%s: out of memory", model->name);
    } else if (on) {
        memset(model->op_time, 0, model->header->op_count * sizeof *model->op_time);
    }
    model->profiling = on != 0;
    return HQRT_OK;
}

hqrt_status_t hqrt_op_profile(const hqrt_model_t *model, int index, hqrt_op_profile_t *profile,
                              hqrt_error_t *err)
{
    if (!model || !profile)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "hqrt_op_profile: NULL argument");
    uint32_t count = model->header->op_count;
    if (index < 0 || (uint32_t)index >= count)
        return hqrt_i_fail(err, HQRT_ERR_ARGUMENT, "%s: no op %d (the program has %u)",
                           model->name, index, count);
    const hqx_op_t *op = &model->ops[index];
    *profile = (hqrt_op_profile_t){
        .count = (int)count,
        .name = model->strings + op->name,
        .kind = hqrt_i_op_kind(op->code),
        .seconds = model->op_time ? model->op_time[index].seconds : 0.0,
        .runs = model->op_time ? model->op_time[index].runs : 0,
    };
    return HQRT_OK;
}

