/*
 * runtime/parallel.c — running one large op on several cores: a work-sharing pool of our
 * own on pthreads, in which the calling thread never waits for a thread that has not
 * started, and the thread count (hg_set_num_threads, HOLOGRAM_THREADS, the CPUs the
 * process may use).
 *
 *   rt_par_for(n_chunks, threads, fn, ctx)
 *     threads < 2, one chunk, or the pool busy with another caller's job → every chunk on
 *     the calling thread, in order
 *     else: publish the job (one atomic word: job number | chunk count | next chunk), ask
 *     threads - 1 workers to join, claim chunks on the calling thread too; each chunk is
 *     claimed by one compare-and-swap of that word, so a worker that wakes after the last
 *     chunk was claimed (or after the job ended: its number no longer matches) finds
 *     nothing and goes back to sleep.  The caller then waits only for the chunks other
 *     threads claimed and are running.  When such a wait was a stall (a worker descheduled
 *     in the middle of its chunk: see rt_pool_stalled), the next split ops run on their
 *     calling thread alone for 20 ms, doubling up to 160 ms while stalls go on.
 *   rt_par_try(p, args)  maps and single reductions of RANGE programs: [0, n) cut into
 *     chunks by rt_par_chunk(n) (a function of n only, RT_PAR_ALIGN-aligned), each run as
 *     the same program with slot pointers offset; the partial results of a reduction are
 *     combined in chunk order on the caller (min/max exactly with canon/scalar.h, sums in
 *     double).  Programs of several RANGE and SCALAR stages (softmax, losses, expressions
 *     such as x / sum(x)) run stage by stage, each stage's own program
 *     (canon_stage_form) split the same way, what later stages read of a stage and LEN
 *     passed as parameters.  The cut does not depend on the thread count, and a split op is
 *     cut the same way on one thread: results are identical for every thread count.
 *   rt_par_contract(p, args)  gemm/matvec blocked over rows of C (see below).
 *
 * Why not OpenMP: a `parallel` region ends at a barrier that every team thread must reach,
 * so a caller waits for a worker the OS has not scheduled (8 ms per 1M add with three busy
 * processes on the other core, against 87 us on one thread), and libgomp's pool hangs a
 * forked child.  Workers wait RT_POOL_SPIN_NS for the next job (back-to-back ops find them
 * awake), yielding the CPU while they do (on a shared core the caller runs first), then
 * sleep on a futex.
 *
 * Fork: handlers registered at load (pthread_atfork) take the registry lock exclusive and
 * the cJSON lock before fork() — so no hologram call of another thread is half-way through
 * a lock or through LLVM — and release them in parent and child; the child's pool is
 * emptied (its workers did not survive the fork) and refilled by its next split op.
 *
 * Workers never touch the calling thread's error state: each chunk writes its own status
 * and message, and the caller reports the first failure in chunk order.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../canon/env.h"
#include "../canon/scalar.h"
#include "rt.h"

/* ---- the thread count ---------------------------------------------------------------- */

static pthread_once_t rt_par_once = PTHREAD_ONCE_INIT;
static atomic_int rt_par_env_threads;  /* from HOLOGRAM_THREADS or the default */
static atomic_int rt_par_forced;       /* hg_set_num_threads; 0: the environment's */
static char rt_par_env_bad[192];       /* the message of a bad HOLOGRAM_THREADS (canon/env.h) */

/* ceil(quota / period) of a cgroup v2 cpu.max file ("max 100000" or "150000 100000"), or
 * 0 when there is no quota (or no such file). */
static long rt_par_cgroup_cpus(const char *path) {
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char quota[32] = "";
    long period = 0;
    int got = fscanf(f, "%31s %ld", quota, &period);
    fclose(f);
    char *end;
    long q = strtol(quota, &end, 10);
    if (got != 2 || *end != '\0' || q <= 0 || period <= 0)
        return 0;
    return (q + period - 1) / period;
}

/* The CPUs of the process's affinity mask, capped by a cgroup CPU quota. */
int rt_par_default_threads(void) {
    cpu_set_t set;
    long t = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                          : sysconf(_SC_NPROCESSORS_ONLN);
    long quota = rt_par_cgroup_cpus("/sys/fs/cgroup/cpu.max");
    if (quota > 0 && quota < t)
        t = quota;
    return t < 1 ? 1 : t > RT_PAR_MAX_THREADS ? RT_PAR_MAX_THREADS : (int)t;
}

/* Reads HOLOGRAM_THREADS (once per process): an integer in 1..RT_PAR_MAX_THREADS, or the
 * default; the message of anything else is kept for rt_par_check to report. */
static void rt_par_env_read(void) {
    long long v = rt_par_default_threads();
    canon_env_int("HOLOGRAM_THREADS", 1, RT_PAR_MAX_THREADS, &v, rt_par_env_bad,
                  sizeof rt_par_env_bad);
    atomic_store(&rt_par_env_threads, (int)v);
}

int rt_par_threads(void) {
    int forced = atomic_load(&rt_par_forced);
    if (forced > 0)
        return forced;
    pthread_once(&rt_par_once, rt_par_env_read);
    return atomic_load(&rt_par_env_threads);
}

hg_status rt_par_check(void) {
    if (atomic_load(&rt_par_forced) > 0)
        return HG_OK;
    pthread_once(&rt_par_once, rt_par_env_read);
    if (rt_par_env_bad[0])
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s (threads; or call hg_set_num_threads)",
                        rt_par_env_bad);
    return HG_OK;
}

void rt_par_set_threads(int threads) {
    atomic_store(&rt_par_forced, threads <= 0 ? 0
                                 : threads > RT_PAR_MAX_THREADS ? RT_PAR_MAX_THREADS
                                                                : threads);
}

hg_status hg_set_num_threads(int64_t threads) {
    rt_error_clear();
    if (threads < 1 || threads > RT_PAR_MAX_THREADS)
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "set_num_threads: threads = %lld is not in 1..%d", (long long)threads,
                        RT_PAR_MAX_THREADS);
    rt_par_set_threads((int)threads);
    return HG_OK;
}

hg_status hg_get_num_threads(uint64_t *out_threads) {
    rt_error_clear();
    if (!out_threads)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "get_num_threads: out_threads is NULL");
    hg_status st = rt_par_check();
    if (st == HG_OK)
        *out_threads = (uint64_t)rt_par_threads();
    return st;
}

/* ---- the pool ---------------------------------------------------------------------------
 * The job word: bits 40..63 the job number (never 0 for a live job), 20..39 the chunk
 * count, 0..19 the next chunk to claim.  fn and ctx are written before the word is
 * published (release) and read after a successful claim (acquire): a claimed chunk keeps
 * its job alive, since the caller waits for it. */
#define RT_POOL_SEQ_SHIFT 40
#define RT_POOL_N_SHIFT 20
#define RT_POOL_FIELD ((UINT64_C(1) << 20) - 1)
#define RT_POOL_SPIN_NS 1000000 /* a worker's wait for its next job before it sleeps */
#define RT_POOL_WAIT_NS 200000 /* the caller's spin for claimed chunks before it sleeps */
/* see rt_pool_stalled: a descheduled worker costs the caller a time slice (ms); a worker
 * just woken from its futex, or started, costs tens of microseconds, which is no stall */
#define RT_POOL_STALL_NS 200000
#define RT_POOL_STALL_CHUNKS 4
#define RT_POOL_ALONE_NS 20000000u      /* 20 ms */
#define RT_POOL_ALONE_MAX_NS 160000000u /* 160 ms */

typedef struct {
    _Alignas(64) atomic_uint want; /* the job this worker is asked to join */
    atomic_int sleeping;           /* in (or about to enter) futex_wait on want */
    unsigned start;                /* the last job before the worker was started */
} rt_worker;

static struct {
    _Alignas(64) _Atomic uint64_t word;
    rt_chunk_fn fn;
    void *ctx;
    uint32_t seq;                  /* the last job number (the pool holder's) */
    int n_workers;                 /* started (the pool holder's) */
    _Alignas(64) atomic_uint done; /* chunks of the current job that have run */
    atomic_int waiting;            /* the caller sleeps on done */
    _Alignas(64) atomic_int busy;  /* a caller holds the pool */
    _Atomic uint64_t alone_until;  /* CLOCK_MONOTONIC ns: split ops run alone until then */
    uint64_t alone_ns;             /* the last such period (the pool holder's) */
    rt_worker workers[RT_PAR_MAX_THREADS - 1];
} rt_pool;

static void rt_futex_wait(atomic_uint *addr, unsigned expected) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void rt_futex_wake(atomic_uint *addr) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static uint64_t rt_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void rt_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims and runs chunks of job `seq` until none is left (or the job is over); returns
 * how many it ran. */
static unsigned rt_pool_work(uint32_t seq) {
    uint64_t w = atomic_load_explicit(&rt_pool.word, memory_order_acquire);
    for (unsigned ran = 0;; ran++) {
        const uint64_t next = w & RT_POOL_FIELD, n = w >> RT_POOL_N_SHIFT & RT_POOL_FIELD;
        if (w >> RT_POOL_SEQ_SHIFT != seq || next >= n)
            return ran;
        if (!atomic_compare_exchange_weak_explicit(&rt_pool.word, &w, w + 1,
                                                   memory_order_acq_rel, memory_order_acquire)) {
            ran--;
            continue;
        }
        rt_pool.fn(rt_pool.ctx, (uint32_t)next);
        if (atomic_fetch_add_explicit(&rt_pool.done, 1, memory_order_acq_rel) + 1 == n &&
            atomic_load(&rt_pool.waiting))
            rt_futex_wake(&rt_pool.done);
        w = atomic_load_explicit(&rt_pool.word, memory_order_acquire);
    }
}

/* A worker: joins each job it is asked to, spins a while for the next, then sleeps. */
static void *rt_pool_worker(void *arg) {
    rt_worker *me = arg;
    unsigned seen = me->start;
    /* This thread's first touch of the library's thread-local block, here where no vector
     * register is live: that first access goes through glibc's _dl_tlsdesc_dynamic (the
     * library is built with -mtls-dialect=gnu2), which before glibc 2.40 does not preserve
     * vector registers (BZ #31372; Debian 12 has 2.36): inside a chunk, the first touch
     * of rt_scratch's pointer clobbered a canon_args copy held in zmm registers. */
    rt_error_clear();
    for (;;) {
        unsigned want = atomic_load(&me->want);
        const uint64_t t0 = rt_now_ns();
        for (unsigned i = 1; want == seen; i++) {
            if (i < 64)
                rt_pause();
            else
                sched_yield(); /* on a shared core, the caller (or anyone) runs first */
            want = atomic_load(&me->want);
            if (want == seen && i % 64 == 0 && rt_now_ns() - t0 > RT_POOL_SPIN_NS) {
                atomic_store(&me->sleeping, 1);
                want = atomic_load(&me->want);
                if (want == seen)
                    rt_futex_wait(&me->want, seen);
                atomic_store(&me->sleeping, 0);
                want = atomic_load(&me->want);
            }
        }
        seen = want;
        rt_pool_work(want);
    }
    return NULL;
}

/* After a job (the pool holder): a stall is a wait for other threads' chunks longer than
 * RT_POOL_STALL_NS and than RT_POOL_STALL_CHUNKS of the caller's own chunks took, i.e. a
 * worker that claimed a chunk and was then descheduled (a busy machine).  After a stall,
 * split ops run on their calling thread alone for a while (RT_POOL_ALONE_NS, doubled on
 * each stall in a row up to RT_POOL_ALONE_MAX_NS); a job without a stall resets that. */
static void rt_pool_stalled(uint64_t start, uint64_t worked, unsigned mine) {
    const uint64_t waited = rt_now_ns() - worked, own = worked - start;
    if (waited > RT_POOL_STALL_NS && waited > RT_POOL_STALL_CHUNKS * own / (mine ? mine : 1)) {
        rt_pool.alone_ns = rt_pool.alone_ns ? rt_pool.alone_ns * 2 : RT_POOL_ALONE_NS;
        if (rt_pool.alone_ns > RT_POOL_ALONE_MAX_NS)
            rt_pool.alone_ns = RT_POOL_ALONE_MAX_NS;
        atomic_store_explicit(&rt_pool.alone_until, rt_now_ns() + rt_pool.alone_ns,
                              memory_order_relaxed);
    } else {
        rt_pool.alone_ns = 0;
    }
}

/* Starts workers until there are `count` (the pool holder only); fewer when the system
 * refuses a thread: the job then runs on those there are.  Workers block every signal
 * (signals stay with the application's threads) and never exit. */
static void rt_pool_grow(int count) {
    if (count > RT_PAR_MAX_THREADS - 1)
        count = RT_PAR_MAX_THREADS - 1;
    if (rt_pool.n_workers >= count)
        return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    int attr_ok = pthread_attr_init(&attr) == 0;
    if (attr_ok)
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (rt_pool.n_workers < count) {
        rt_worker *w = &rt_pool.workers[rt_pool.n_workers];
        w->start = rt_pool.seq;
        atomic_store(&w->want, rt_pool.seq);
        atomic_store(&w->sleeping, 0);
        pthread_t t;
        if (pthread_create(&t, attr_ok ? &attr : NULL, rt_pool_worker, w) != 0)
            break;
        rt_pool.n_workers++;
    }
    if (attr_ok)
        pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void rt_par_for(uint32_t n_chunks, int threads, rt_chunk_fn fn, void *ctx) {
    int idle = 0;
    if (threads < 2 || n_chunks < 2 || n_chunks > RT_POOL_FIELD ||
        rt_now_ns() < atomic_load_explicit(&rt_pool.alone_until, memory_order_relaxed) ||
        !atomic_compare_exchange_strong(&rt_pool.busy, &idle, 1)) {
        for (uint32_t c = 0; c < n_chunks; c++)
            fn(ctx, c);
        return;
    }
    int helpers = threads - 1 < (int)n_chunks - 1 ? threads - 1 : (int)n_chunks - 1;
    rt_pool_grow(helpers);
    if (helpers > rt_pool.n_workers)
        helpers = rt_pool.n_workers;
    rt_pool.fn = fn;
    rt_pool.ctx = ctx;
    atomic_store(&rt_pool.done, 0);
    rt_pool.seq = (rt_pool.seq + 1) & 0xffffffu;
    if (rt_pool.seq == 0)
        rt_pool.seq = 1;
    const uint32_t seq = rt_pool.seq;
    atomic_store_explicit(&rt_pool.word,
                          (uint64_t)seq << RT_POOL_SEQ_SHIFT | (uint64_t)n_chunks << RT_POOL_N_SHIFT,
                          memory_order_release);
    for (int i = 0; i < helpers; i++) {
        rt_worker *w = &rt_pool.workers[i];
        atomic_store(&w->want, seq);
        if (atomic_load(&w->sleeping))
            rt_futex_wake(&w->want);
    }
    const uint64_t start = rt_now_ns();
    const unsigned mine = rt_pool_work(seq);
    const uint64_t t0 = rt_now_ns();
    for (unsigned i = 1; atomic_load_explicit(&rt_pool.done, memory_order_acquire) != n_chunks;
         i++) {
        rt_pause();
        if (i % 64 == 0 && rt_now_ns() - t0 > RT_POOL_WAIT_NS) {
            atomic_store(&rt_pool.waiting, 1);
            unsigned d;
            while ((d = atomic_load_explicit(&rt_pool.done, memory_order_acquire)) != n_chunks)
                rt_futex_wait(&rt_pool.done, d);
            atomic_store(&rt_pool.waiting, 0);
            break;
        }
    }
    rt_pool_stalled(start, t0, mine);
    atomic_store_explicit(&rt_pool.busy, 0, memory_order_release);
}

/* ---- fork ------------------------------------------------------------------------------ */

static void rt_fork_prepare(void) {
    rt_lock_fork(RT_FORK_PREPARE);
}

static void rt_fork_parent(void) {
    rt_lock_fork(RT_FORK_PARENT);
}

/* The child: no worker survived; the pool starts empty, free, and its job word dead. */
static void rt_fork_child(void) {
    rt_pool.n_workers = 0;
    atomic_store(&rt_pool.word, 0);
    atomic_store(&rt_pool.waiting, 0);
    atomic_store(&rt_pool.busy, 0);
    atomic_store(&rt_pool.alone_until, 0);
    rt_pool.alone_ns = 0;
    rt_lock_fork(RT_FORK_CHILD);
}

__attribute__((constructor)) static void rt_fork_register(void) {
    pthread_atfork(rt_fork_prepare, rt_fork_parent, rt_fork_child);
}

/* ---- splitting a RANGE program ----------------------------------------------------------- */

/* 1 when p is a map (all stages RANGE, stored, not reduced) or a single RANGE stage that
 * reduces (sum/min/max) into the program's result without storing. */
static int rt_par_splittable(const canon_program *p) {
    if (p->n_stages == 0 || p->oom)
        return 0;
    if (p->result_stage != CANON_NONE) {
        const canon_stage *s = &p->stages[0];
        return p->n_stages == 1 && p->result_stage == 0 && s->domain == CANON_DOM_RANGE &&
               s->store_slot == CANON_NONE && s->reduce != CANON_RED_NONE;
    }
    for (uint32_t i = 0; i < p->n_stages; i++) {
        const canon_stage *s = &p->stages[i];
        if (s->domain != CANON_DOM_RANGE || s->store_slot == CANON_NONE ||
            s->reduce != CANON_RED_NONE)
            return 0;
    }
    return 1;
}

/* 1 when every two slots of p over n elements are the same array or disjoint: only then is
 * each piece independent of the others (a partly overlapping copy is a memmove). */
static int rt_par_independent(const canon_program *p, const canon_args *args) {
    for (uint32_t i = 0; i < p->n_slots && i < CANON_MAX_SLOTS; i++)
        for (uint32_t j = i + 1; j < p->n_slots && j < CANON_MAX_SLOTS; j++) {
            const float *a = args->slot[i], *b = args->slot[j];
            if (a && b && a != b && a < b + args->n && b < a + args->n)
                return 0;
        }
    return 1;
}

uint64_t rt_par_min_n(const canon_program *p) {
    uint64_t w = 0;
    for (uint32_t i = 0; i < p->n_nodes && w < 4; i++) {
        const canon_kind_info *k = &canon_kinds[p->nodes[i].kind];
        if (!(k->flags & CANON_LEAF))
            w += k->cost == CANON_COST_COSTLY ? 4 : 1;
    }
    return RT_PAR_MIN_WORK / (w < 1 ? 1 : w > 4 ? 4 : w);
}

uint64_t rt_par_chunk(uint64_t n) {
    uint64_t c = (n + RT_PAR_CHUNKS - 1) / RT_PAR_CHUNKS;
    c = (c + RT_PAR_ALIGN - 1) / RT_PAR_ALIGN * RT_PAR_ALIGN;
    return c < RT_PAR_CHUNK_MIN ? RT_PAR_CHUNK_MIN : c;
}

/* One split op: the piece function, the op's arguments, how chunk c's arguments follow
 * from them (cut), and each chunk's outcome.  One family for every kind of split. */
typedef struct rt_split rt_split;
struct rt_split {
    const canon_program *p;
    const canon_args *args;
    rt_piece_fn fn;
    void *ctx;
    /* Makes chunk c's arguments in *a (a copy of *args); a GRID cut puts the chunk's grid
     * in *g and points a->grid at it. */
    void (*cut)(const rt_split *j, uint32_t c, canon_args *a, canon_grid *g);
    uint64_t size; /* elements, rows, columns or dimension-0 indices per chunk */
    hg_status st[RT_PAR_CHUNKS];
    float part[RT_PAR_CHUNKS];
    char msg[RT_PAR_CHUNKS][160];
};

static void rt_split_chunk(void *ctx, uint32_t c) {
    rt_split *j = ctx;
    canon_args a = *j->args;
    canon_grid g;
    j->cut(j, c, &a, &g);
    j->part[c] = 0.0f;
    j->msg[c][0] = '\0';
    j->st[c] = j->fn(j->ctx, j->p, &a, &j->part[c], j->msg[c], sizeof j->msg[c]);
}

/* Runs the n chunks of j on `threads` threads; HG_OK, or the first failure in chunk order
 * (its message to err). */
static hg_status rt_split_run(rt_split *j, uint32_t n, int threads, char *err, size_t cap) {
    rt_par_for(n, threads, rt_split_chunk, j);
    for (uint32_t i = 0; i < n; i++)
        if (j->st[i] != HG_OK) {
            snprintf(err, cap, "%s", j->msg[i]);
            return j->st[i];
        }
    return HG_OK;
}

/* A RANGE chunk: elements [c * size, ...). */
static void rt_cut_range(const rt_split *j, uint32_t c, canon_args *a, canon_grid *g) {
    (void)g;
    const uint64_t lo = (uint64_t)c * j->size;
    for (uint32_t s = 0; s < j->p->n_slots && s < CANON_MAX_SLOTS; s++)
        if (a->slot[s])
            a->slot[s] += lo;
    a->n = a->n - lo < j->size ? a->n - lo : j->size;
}

/* Runs one-stage RANGE program p on args in chunks of rt_par_chunk(n) (see the top). */
static void rt_range_run(const canon_program *p, const canon_args *args, rt_piece_fn fn,
                         void *ctx, float *result, hg_status *out_status, char *err,
                         size_t err_cap) {
    rt_split job = {.p = p, .args = args, .fn = fn, .ctx = ctx, .cut = rt_cut_range,
                    .size = rt_par_chunk(args->n)}, *j = &job;
    const uint32_t chunks = (uint32_t)((args->n + j->size - 1) / j->size);
    *out_status = rt_split_run(j, chunks, rt_par_threads(), err, err_cap);
    if (*out_status == HG_OK && p->result_stage != CANON_NONE && result) {
        canon_reduce red = p->stages[0].reduce;
        double sum = 0.0;
        float acc = j->part[0];
        for (uint32_t i = 0; i < chunks; i++) {
            sum += (double)j->part[i];
            if (i > 0)
                acc = red == CANON_RED_MIN ? canon_min_f32(acc, j->part[i])
                                           : canon_max_f32(acc, j->part[i]);
        }
        *result = red == CANON_RED_SUM ? (float)sum : acc;
    }
}

int rt_par_try(const canon_program *p, const canon_args *args, rt_piece_fn fn, void *ctx,
               float *result, hg_status *out_status, char *err, size_t err_cap) {
    if (args->n < RT_PAR_MIN_WORK / 4 || args->n < rt_par_min_n(p) ||
        !rt_par_independent(p, args))
        return 0;
    if (rt_par_splittable(p)) {
        rt_range_run(p, args, fn, ctx, result, out_status, err, err_cap);
        return 1;
    }
    /* stage by stage: each RANGE stage split, what later stages read of it a parameter */
    const uint32_t ns = p->n_stages;
    for (uint32_t s = 0; s < ns; s++)
        if (ns < 2 || !canon_stage_form(p, s))
            return 0;
    canon_args a = *args;
    float acc[CANON_MAX_STAGES] = {0};
    a.param[p->n_params + ns] = (float)args->n; /* LEN */
    for (uint32_t s = 0; s < ns; s++) {
        const canon_program *q = canon_stage_form(p, s);
        if (p->stages[s].domain == CANON_DOM_SCALAR)
            *out_status = fn(ctx, q, &a, &acc[s], err, err_cap);
        else
            rt_range_run(q, &a, fn, ctx, &acc[s], out_status, err, err_cap);
        if (*out_status != HG_OK)
            return 1;
        a.param[p->n_params + s] = acc[s]; /* ACC s */
    }
    if (p->result_stage != CANON_NONE && result)
        *result = acc[p->result_stage];
    return 1;
}

/* ---- GRID programs (N-d operands) -------------------------------------------------------- */

/* A GRID chunk: indices [c * size, ...) of dimension 0, with its own grid (shape[0] cut,
 * pointers moved along dimension 0's strides). */
static void rt_cut_grid(const rt_split *j, uint32_t c, canon_args *a, canon_grid *mine) {
    const canon_grid *g = j->args->grid;
    const uint64_t r0 = (uint64_t)c * j->size;
    *mine = *g;
    mine->shape[0] = g->shape[0] - r0 < j->size ? g->shape[0] - r0 : j->size;
    a->grid = mine;
    for (uint32_t k = 0; k < j->p->n_slots && k < CANON_MAX_SLOTS; k++)
        if (a->slot[k])
            a->slot[k] += (int64_t)r0 * g->stride[k][0];
    if (mine->result && g->outer > 0)
        mine->result += (int64_t)r0 * g->result_stride[0];
    a->n = 1;
    for (uint32_t d = g->outer; d < g->ndim; d++)
        a->n *= mine->shape[d];
}

int rt_par_grid(const canon_program *p, const canon_args *args, rt_piece_fn fn, void *ctx,
                hg_status *out_status, char *err, size_t err_cap) {
    const canon_grid *g = args->grid;
    if (!g || g->ndim < 1 || g->ndim > CANON_MAX_DIMS || g->outer > g->ndim ||
        g->shape[0] < 2)
        return 0;
    int reduces = p->result_stage != CANON_NONE;
    for (uint32_t s = 0; s < p->n_stages && s < CANON_MAX_STAGES; s++)
        reduces |= p->stages[s].reduce != CANON_RED_NONE;
    if (g->outer == 0 && reduces) /* dimension 0 inside the reduced rows */
        return 0;
    uint64_t total = 1;
    for (uint32_t d = 0; d < g->ndim; d++)
        total *= g->shape[d];
    if (total < RT_PAR_MIN_WORK / 4 || total < rt_par_min_n(p))
        return 0;
    const uint64_t per = total / g->shape[0];
    uint64_t rows = (g->shape[0] + RT_PAR_CHUNKS - 1) / RT_PAR_CHUNKS;
    const uint64_t least = (RT_PAR_CHUNK_MIN + per - 1) / per;
    rows = rows < least ? least : rows;
    const uint64_t chunks = (g->shape[0] + rows - 1) / rows;
    if (chunks < 2)
        return 0;
    rt_split job = {.p = p, .args = args, .fn = fn, .ctx = ctx, .cut = rt_cut_grid,
                    .size = (g->shape[0] + chunks - 1) / chunks}; /* balanced */
    const uint32_t n_chunks = (uint32_t)((g->shape[0] + job.size - 1) / job.size);
    *out_status = rt_split_run(&job, n_chunks, rt_par_threads(), err, err_cap);
    return 1;
}

/* ---- streamed stores ---------------------------------------------------------------------- */

static pthread_once_t rt_stream_once = PTHREAD_ONCE_INIT;
static uint64_t rt_stream_bytes;

static void rt_stream_read(void) {
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    rt_stream_bytes = llc > 0 && (uint64_t)llc < RT_PAR_STREAM_BYTES ? (uint64_t)llc
                                                                      : RT_PAR_STREAM_BYTES;
}

uint64_t rt_par_stream_bytes(void) {
    pthread_once(&rt_stream_once, rt_stream_read);
    return rt_stream_bytes;
}

int rt_par_stream(const canon_program *p, const canon_args *args) {
    if (p->result_stage != CANON_NONE || !rt_par_splittable(p) ||
        args->n * sizeof(float) < rt_par_stream_bytes())
        return 0;
    for (uint32_t s = 0; s < p->n_stages; s++) {
        const uint32_t k = p->stages[s].store_slot;
        if (k >= CANON_MAX_SLOTS)
            return 0;
        for (uint32_t j = 0; j < p->n_slots && j < CANON_MAX_SLOTS; j++)
            if (j != k && args->slot[j] == args->slot[k])
                return 0;
    }
    return 1;
}

/* ---- contractions ------------------------------------------------------------------------ */

/* A contraction chunk: rows [c * size, ...) of C, or (one row) its columns. */
static void rt_cut_rows(const rt_split *j, uint32_t c, canon_args *a, canon_grid *unused) {
    (void)unused;
    const canon_contract_shape *g = &j->args->contract;
    const uint64_t i0 = (uint64_t)c * j->size;
    a->slot[0] += (int64_t)i0 * g->a_rs;
    a->slot[j->p->stages[0].store_slot] += i0 * g->n;
    a->contract.m = g->m - i0 < j->size ? g->m - i0 : j->size;
}

static void rt_cut_cols(const rt_split *j, uint32_t c, canon_args *a, canon_grid *unused) {
    (void)unused;
    const canon_contract_shape *g = &j->args->contract;
    const uint64_t j0 = (uint64_t)c * j->size;
    a->slot[1] += (int64_t)j0 * g->b_cs;
    a->slot[j->p->stages[0].store_slot] += j0;
    a->contract.n = g->n - j0 < j->size ? g->n - j0 : j->size;
}

void rt_par_contract_shape(const canon_program *p, canon_args *args) {
    canon_contract_shape *g = &args->contract;
    if (p->n_stages != 1 || p->stages[0].domain != CANON_DOM_CONTRACT || g->m != 1 ||
        g->n < 2 || g->a_cs != 1 || g->b_rs != 1 ||
        !(canon_kinds[p->nodes[p->stages[0].root].kind].flags & CANON_COMM))
        return;
    float *a = args->slot[0];
    const int64_t ars = g->a_rs, acs = g->a_cs;
    args->slot[0] = args->slot[1];
    args->slot[1] = a;
    g->m = g->n;
    g->n = 1;
    g->a_rs = g->b_cs;
    g->a_cs = g->b_rs;
    g->b_rs = acs;
    g->b_cs = ars;
}

int rt_par_contract(const canon_program *p, const canon_args *args, rt_piece_fn fn, void *ctx,
                    hg_status *out_status, char *err, size_t err_cap) {
    const canon_contract_shape *g = &args->contract;
    const int threads = rt_par_threads();
    if (threads < 2 || p->n_stages != 1 || p->stages[0].domain != CANON_DOM_CONTRACT ||
        p->stages[0].store_slot == 0 || p->stages[0].store_slot >= CANON_MAX_SLOTS ||
        g->n == 0 || g->k == 0 || (g->m < 2 * RT_PAR_ROWS && g->m != 1) ||
        g->m * g->n * g->k < 2 * RT_PAR_CONTRACT_MIN)
        return 0;
    /* rows (or a single row's columns) in about 2 blocks per thread, each a multiple of
     * RT_PAR_ROWS rows (RT_PAR_COLS columns) of RT_PAR_CONTRACT_MIN multiply-adds at least */
    const uint64_t extent = g->m == 1 ? g->n : g->m, unit = g->m == 1 ? RT_PAR_COLS : RT_PAR_ROWS;
    const uint64_t per = g->m == 1 ? g->k : g->n * g->k;
    uint64_t size = (extent + 2 * (uint64_t)threads - 1) / (2 * (uint64_t)threads);
    const uint64_t least = (RT_PAR_CONTRACT_MIN + per - 1) / per;
    size = size < least ? least : size;
    size = (size + unit - 1) / unit * unit;
    const uint64_t chunks = (extent + size - 1) / size;
    if (chunks < 2 || chunks > RT_PAR_CHUNKS)
        return 0;
    rt_split job = {.p = p, .args = args, .fn = fn, .ctx = ctx,
                    .cut = g->m == 1 ? rt_cut_cols : rt_cut_rows, .size = size};
    *out_status = rt_split_run(&job, (uint32_t)chunks, threads, err, err_cap);
    return 1;
}
