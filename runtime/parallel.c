/*
 * runtime/parallel.c — splitting one large op across cores with OpenMP.
 *
 *   rt_exec → rt_par_try(p, args):  n < rt_par_min_n(p), one thread, or not splittable → 0
 *     maps (every stage RANGE, store, no reduce): pieces [lo, hi) aligned to RT_PAR_ALIGN,
 *       each run as the same program with slot pointers offset and n = hi - lo
 *       → identical results to one thread by construction
 *     one RANGE stage reducing (sum/min/max) into the result: pieces as above, partial
 *       results combined on the calling thread (min/max exactly with canon/scalar.h,
 *       sums in double: the engines' own blocking, 1024 elements, is kept)
 *   Multi-stage programs with reductions (losses, softmax) run on one thread.
 *
 * Thread count: HOLOGRAM_THREADS (read once; a positive integer, 1 disables splitting)
 * capped at RT_PAR_MAX_THREADS; default and invalid values mean every core OpenMP sees.
 * Worker threads never touch the calling thread's error state: each piece writes its own
 * status and message, and the caller reports the first failure.
 */
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "../canon/scalar.h"
#include "rt.h"

static pthread_once_t rt_par_once = PTHREAD_ONCE_INIT;
static atomic_int rt_par_env_threads;  /* from HOLOGRAM_THREADS or the core count */
static atomic_int rt_par_forced;       /* rt_par_set_threads; 0: use the environment */
static char rt_par_env_bad[64];        /* a rejected HOLOGRAM_THREADS value (truncated) */

/* Reads HOLOGRAM_THREADS (once per process); a value that is not a positive integer is
 * kept for rt_par_check to report. */
static void rt_par_env_read(void) {
    long t = omp_get_num_procs();
    const char *s = getenv("HOLOGRAM_THREADS");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && v > 0)
            t = v;
        else
            snprintf(rt_par_env_bad, sizeof rt_par_env_bad, "%s", s);
    }
    t = t < 1 ? 1 : t > RT_PAR_MAX_THREADS ? RT_PAR_MAX_THREADS : t;
    atomic_store(&rt_par_env_threads, (int)t);
}

/* The thread count ops may use (see rt.h). */
int rt_par_threads(void) {
    int forced = atomic_load(&rt_par_forced);
    if (forced > 0)
        return forced;
    pthread_once(&rt_par_once, rt_par_env_read);
    return atomic_load(&rt_par_env_threads);
}

/* HG_OK, or INVALID_ARGUMENT naming a HOLOGRAM_THREADS value that is not a positive
 * integer (unless rt_par_set_threads overrides the environment). */
hg_status rt_par_check(void) {
    if (atomic_load(&rt_par_forced) > 0)
        return HG_OK;
    pthread_once(&rt_par_once, rt_par_env_read);
    if (rt_par_env_bad[0])
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "HOLOGRAM_THREADS=\"%s\" is not a positive integer", rt_par_env_bad);
    return HG_OK;
}

/* Overrides the environment's thread count (clamped to 1..RT_PAR_MAX_THREADS); 0 undoes. */
void rt_par_set_threads(int threads) {
    atomic_store(&rt_par_forced, threads <= 0 ? 0
                                 : threads > RT_PAR_MAX_THREADS ? RT_PAR_MAX_THREADS
                                                                : threads);
}

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

/* RT_PAR_MIN_WORK over p's work per element: computed nodes, a COSTLY one counting 4,
 * clamped to 1..4. */
uint64_t rt_par_min_n(const canon_program *p) {
    uint64_t w = 0;
    for (uint32_t i = 0; i < p->n_nodes && w < 4; i++) {
        const canon_kind_info *k = &canon_kinds[p->nodes[i].kind];
        if (!(k->flags & CANON_LEAF))
            w += k->cost == CANON_COST_COSTLY ? 4 : 1;
    }
    return RT_PAR_MIN_WORK / (w < 1 ? 1 : w > 4 ? 4 : w);
}

/* Runs p in one piece per thread when worthwhile (see the top); 0 when it did nothing. */
int rt_par_try(const canon_program *p, const canon_args *args, rt_piece_fn fn, void *ctx,
               float *result, hg_status *out_status, char *err, size_t err_cap) {
    if (args->n < RT_PAR_MIN_WORK / 4)
        return 0;
    int threads = rt_par_threads();
    if (threads < 2 || args->n < rt_par_min_n(p) || omp_in_parallel() ||
        !rt_par_splittable(p) || !rt_par_independent(p, args))
        return 0;
    const uint64_t n = args->n;
    uint64_t chunk = (n + (uint64_t)threads - 1) / (uint64_t)threads;
    chunk = (chunk + RT_PAR_ALIGN - 1) / RT_PAR_ALIGN * RT_PAR_ALIGN;
    const int pieces = (int)((n + chunk - 1) / chunk);
    hg_status st[RT_PAR_MAX_THREADS];
    float part[RT_PAR_MAX_THREADS];
    char msg[RT_PAR_MAX_THREADS][160];

#pragma omp parallel for num_threads(pieces) schedule(static, 1)
    for (int i = 0; i < pieces; i++) {
        const uint64_t lo = (uint64_t)i * chunk, len = n - lo < chunk ? n - lo : chunk;
        canon_args a = *args;
        for (uint32_t s = 0; s < p->n_slots && s < CANON_MAX_SLOTS; s++)
            if (a.slot[s])
                a.slot[s] += lo;
        a.n = len;
        part[i] = 0.0f;
        msg[i][0] = '\0';
        st[i] = fn(ctx, &a, &part[i], msg[i], sizeof msg[i]);
    }

    for (int i = 0; i < pieces; i++)
        if (st[i] != HG_OK) {
            snprintf(err, err_cap, "%s", msg[i]);
            *out_status = st[i];
            return 1;
        }
    if (p->result_stage != CANON_NONE && result) {
        canon_reduce red = p->stages[0].reduce;
        double sum = 0.0;
        float acc = part[0];
        for (int i = 0; i < pieces; i++) {
            sum += (double)part[i];
            if (i > 0)
                acc = red == CANON_RED_MIN ? canon_min_f32(acc, part[i])
                                           : canon_max_f32(acc, part[i]);
        }
        *result = red == CANON_RED_SUM ? (float)sum : acc;
    }
    *out_status = HG_OK;
    return 1;
}
