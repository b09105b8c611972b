/*
 * runtime/exec.c — running canonical forms: backend choice, JIT with interpreter fallback,
 * cache statistics, and the HOLOGRAM_DUMP=canon debug switch (ops: once each at first
 * run; expressions: at compile).
 *
 *   rt_run_op(op) → canon_form(op) → rt_exec → whole, or in pieces on several threads
 *   (runtime/parallel.c), each piece:
 *     backend "jit"    → jit_run; on error → fallbacks += 1 → interp_run
 *     backend "interp" → interp_run
 *   A CONTRACT or GRID program on the JIT gets the piece's thread's scratch
 *   (canon_args.scratch: packed gemm panels, a column reduction's accumulators):
 *   one 64-byte aligned block per thread, allocated at its first contraction, reused by
 *   every later one and freed at thread exit; when it cannot be allocated the op fails
 *   with HG_ERR_NO_MEMORY.
 *
 * The backend is process-wide: HOLOGRAM_BACKEND is read once ("jit" or "interp"; any
 * other value makes every op fail, naming the value, until hg_set_backend picks a valid
 * one), and hg_set_backend changes it at any time.  Built without HG_WITH_JIT, the only
 * backend is "interp".
 *
 * Knobs (canon/env.h): every op first checks the environment (rt_env_check): a bad value
 * of HOLOGRAM_BACKEND, HOLOGRAM_DUMP, the JIT's knobs (jit_env_check) or HOLOGRAM_THREADS
 * (rt_par_check) makes it fail with HG_ERR_INVALID_ARGUMENT naming the variable and value.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../canon/env.h"
#include "interp.h"
#include "rt.h"
#ifdef HG_WITH_JIT
#include "../jit/jit.h"
#endif

enum { RT_BACKEND_INVALID, RT_BACKEND_JIT, RT_BACKEND_INTERP };

#ifdef HG_WITH_JIT
#define RT_BACKEND_DEFAULT RT_BACKEND_JIT
#else
#define RT_BACKEND_DEFAULT RT_BACKEND_INTERP
#endif

static atomic_int rt_backend = RT_BACKEND_DEFAULT;
static pthread_once_t rt_env_once = PTHREAD_ONCE_INIT;
static char rt_backend_bad[192];    /* the message of a bad HOLOGRAM_BACKEND */
static char rt_dump_bad[192];       /* the message of a bad HOLOGRAM_DUMP */
static int rt_dump_canon;           /* HOLOGRAM_DUMP lists "canon" */
static atomic_bool rt_dumped[CANON_OP_COUNT]; /* op already dumped */
static atomic_ullong rt_fallbacks;

/* The backends' names (the words HOLOGRAM_BACKEND accepts). */
#ifdef HG_WITH_JIT
static const char *const rt_backend_names[] = {"jit", "interp", NULL};
#else
static const char *const rt_backend_names[] = {"interp", NULL};
#endif

/* The backend named `name`, or RT_BACKEND_INVALID. */
static int rt_backend_parse(const char *name) {
#ifdef HG_WITH_JIT
    if (strcmp(name, "jit") == 0)
        return RT_BACKEND_JIT;
#endif
    if (strcmp(name, "interp") == 0)
        return RT_BACKEND_INTERP;
    return RT_BACKEND_INVALID;
}

/* Reads HOLOGRAM_BACKEND and HOLOGRAM_DUMP (once per process, canon/env.h). */
static void rt_env_read(void) {
    int i;
    int got = canon_env_word("HOLOGRAM_BACKEND", rt_backend_names, &i, rt_backend_bad,
                             sizeof rt_backend_bad);
    if (got != 0)
        atomic_store(&rt_backend, got < 0 ? RT_BACKEND_INVALID
                                          : rt_backend_parse(rt_backend_names[i]));
    static const char *const dump_words[] = CANON_DUMP_WORDS;
    unsigned dump = 0;
    canon_env_words("HOLOGRAM_DUMP", dump_words, &dump, rt_dump_bad, sizeof rt_dump_bad);
    rt_dump_canon = (dump & CANON_DUMP_CANON) != 0;
}

/* The current backend; INVALID_ARGUMENT (naming the environment value) when
 * HOLOGRAM_BACKEND was invalid and no valid backend was set since. */
static hg_status rt_backend_current(int *out) {
    pthread_once(&rt_env_once, rt_env_read);
    int b = atomic_load(&rt_backend);
    if (b == RT_BACKEND_INVALID)
#ifdef HG_WITH_JIT
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s", rt_backend_bad);
#else
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s (this build has no JIT)", rt_backend_bad);
#endif
    *out = b;
    return HG_OK;
}

/* HG_OK, or INVALID_ARGUMENT (recorded) naming the first bad knob other than the backend:
 * HOLOGRAM_DUMP, the JIT's, HOLOGRAM_THREADS. */
static hg_status rt_env_check(void) {
    pthread_once(&rt_env_once, rt_env_read);
    if (rt_dump_bad[0])
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s", rt_dump_bad);
#ifdef HG_WITH_JIT
    char err[512];
    if (jit_env_check(err, sizeof err) != HG_OK)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "%s", err);
#endif
    return rt_par_check();
}

/* Selects the backend for the whole process. */
hg_status hg_set_backend(const char *name) {
    rt_error_clear();
    pthread_once(&rt_env_once, rt_env_read);
    if (!name)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "set_backend: name is NULL");
    int b = rt_backend_parse(name);
    if (b == RT_BACKEND_INVALID)
#ifdef HG_WITH_JIT
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "backend \"%.64s\" is unknown (use \"jit\" or \"interp\")", name);
#else
        return rt_error(HG_ERR_INVALID_ARGUMENT,
                        "backend \"%.64s\" is not available: this build has no JIT (only "
                        "\"interp\")", name);
#endif
    atomic_store(&rt_backend, b);
    return HG_OK;
}

/* *out_name = "jit" or "interp". */
hg_status hg_get_backend(const char **out_name) {
    rt_error_clear();
    if (!out_name)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "get_backend: out_name is NULL");
    int b = RT_BACKEND_DEFAULT;
    hg_status st = rt_backend_current(&b);
    if (st == HG_OK)
        *out_name = b == RT_BACKEND_JIT ? "jit" : "interp";
    return st;
}

/* Copies the kernel-cache counters plus the runtime's fallback count. */
hg_status hg_cache_stats_get(hg_cache_stats *out_stats) {
    rt_error_clear();
    if (!out_stats)
        return rt_error(HG_ERR_INVALID_ARGUMENT, "cache_stats_get: out_stats is NULL");
#ifdef HG_WITH_JIT
    jit_cache_stats(out_stats);
#else
    memset(out_stats, 0, sizeof *out_stats);
#endif
    out_stats->fallbacks = atomic_load(&rt_fallbacks);
    return HG_OK;
}

/* Unloads every kernel and zeroes the counters, fallbacks included. */
hg_status hg_cache_reset(void) {
    rt_error_clear();
#ifdef HG_WITH_JIT
    jit_cache_reset();
#endif
    atomic_store(&rt_fallbacks, 0);
    return HG_OK;
}

/* Prints one program listing to stderr under `title` (HOLOGRAM_DUMP only). */
static void rt_dump_program(const char *title, const canon_program *p) {
    char small[4096];
    size_t need = canon_print(p, small, sizeof small);
    char *text = need < sizeof small ? small : malloc(need + 1);
    if (text != small && text)
        canon_print(p, text, need + 1);
    fprintf(stderr, "== %s ==\n%s\n", title, text ? text : "(out of memory)");
    if (text != small)
        free(text);
}

/* HOLOGRAM_DUMP=canon: prints the pre-rewrite and the normal form of p's op, once. */
static void rt_dump_once(const canon_program *p) {
    if ((unsigned)p->op >= (unsigned)CANON_OP_COUNT || atomic_exchange(&rt_dumped[p->op], true))
        return;
    const char *name = canon_op_get(p->op)->name;
    char title[128];
    canon_program *pre = canon_form_build(p->op);
    if (pre) {
        snprintf(title, sizeof title, "%s: canonical form before rewriting", name);
        rt_dump_program(title, pre);
        canon_program_free(pre);
    }
    snprintf(title, sizeof title, "%s: normal form", name);
    rt_dump_program(title, p);
}

void rt_dump_expr(const char *source, const canon_expr *e) {
    pthread_once(&rt_env_once, rt_env_read);
    if (!rt_dump_canon)
        return;
    char title[160];
    snprintf(title, sizeof title, "expression \"%.100s\": canonical form before rewriting",
             source ? source : "(JSON program)");
    rt_dump_program(title, e->pre);
    snprintf(title, sizeof title, "expression \"%.100s\": normal form (%u nodes, %u before)",
             source ? source : "(JSON program)", e->form->n_nodes, e->form->nodes_before);
    rt_dump_program(title, e->form);
}

/* Name of p's op for messages. */
static const char *rt_op_name(const canon_program *p) {
    const canon_op_info *info = canon_op_get(p->op);
    return info ? info->name : "program";
}

#ifdef HG_WITH_JIT
static pthread_once_t rt_scratch_once = PTHREAD_ONCE_INIT;
static pthread_key_t rt_scratch_key; /* owns each thread's scratch: freed at thread exit */
static bool rt_scratch_key_ok;
static _Thread_local float *rt_scratch_mine; /* this thread's scratch, for the fast path */

/* Creates rt_scratch_key (once per process). */
static void rt_scratch_key_make(void) {
    rt_scratch_key_ok = pthread_key_create(&rt_scratch_key, free) == 0;
}

/* This thread's CANON_CONTRACT_SCRATCH_FLOATS floats, 64-byte aligned, allocated on the
 * thread's first call; NULL when out of memory. */
static float *rt_scratch(void) {
    if (rt_scratch_mine)
        return rt_scratch_mine;
    pthread_once(&rt_scratch_once, rt_scratch_key_make);
    if (!rt_scratch_key_ok)
        return NULL;
    float *s = aligned_alloc(64, CANON_CONTRACT_SCRATCH_FLOATS * sizeof(float));
    if (s && pthread_setspecific(rt_scratch_key, s) != 0) {
        free(s);
        s = NULL;
    }
    rt_scratch_mine = s;
    return s;
}
#endif

/* What a piece of rt_exec needs besides its program and arguments. */
typedef struct {
    int backend;
    int boundary_class;
    bool scratch; /* p has a CONTRACT or GRID stage: JIT kernels get scratch */
} rt_exec_ctx;

/* Runs p on args on c->backend, the interpreter after a JIT failure (counted); on error
 * writes the message to err.  Records nothing, so pool workers may call it (rt_piece_fn). */
static hg_status rt_exec_piece(void *ctx, const canon_program *p, const canon_args *args,
                               float *result, char *err, size_t err_cap) {
#ifdef HG_WITH_JIT
    const rt_exec_ctx *c = ctx;
    canon_args with_scratch; /* here, not in the block: the fallback below still reads it */
    if (c->backend == RT_BACKEND_JIT) {
        if (c->scratch) {
            with_scratch = *args;
            with_scratch.scratch = rt_scratch();
            with_scratch.scratch_floats = CANON_CONTRACT_SCRATCH_FLOATS;
            if (!with_scratch.scratch) {
                snprintf(err, err_cap, "%s: no memory for the %zu KiB kernel scratch",
                         rt_op_name(p), CANON_CONTRACT_SCRATCH_FLOATS * sizeof(float) / 1024);
                return HG_ERR_NO_MEMORY;
            }
            args = &with_scratch;
        }
        if (jit_run(p, args, c->boundary_class, result, err, err_cap) == HG_OK)
            return HG_OK;
        atomic_fetch_add(&rt_fallbacks, 1);
    }
#else
    (void)ctx; /* the interpreter needs nothing of it */
#endif
    hg_status st = interp_run(p, args, result);
    if (st != HG_OK)
        snprintf(err, err_cap, "%s: the interpreter failed (%s)", rt_op_name(p),
                 hg_status_string(st));
    return st;
}

/* Runs `p` on the current backend (see the top of this file), split across threads when
 * rt_par_try (RANGE programs), rt_par_grid (N-d operands) or rt_par_contract (a
 * contraction, after rt_par_contract_shape) finds it worthwhile. */
hg_status rt_exec(const canon_program *p, const canon_args *args, int boundary_class,
                  float *result) {
    rt_exec_ctx c = {RT_BACKEND_DEFAULT, boundary_class, false};
    hg_status st = rt_backend_current(&c.backend);
    if (st == HG_OK)
        st = rt_env_check();
    if (st != HG_OK)
        return st;
    for (uint32_t s = 0; s < p->n_stages && s < CANON_MAX_STAGES; s++)
        c.scratch |= p->stages[s].domain == CANON_DOM_CONTRACT ||
                     p->stages[s].domain == CANON_DOM_GRID;
    if (rt_dump_canon)
        rt_dump_once(p);
    char err[256];
    canon_args shaped;
    int split;
    if (p->n_stages == 1 && p->stages[0].domain == CANON_DOM_CONTRACT) {
        shaped = *args;
        rt_par_contract_shape(p, &shaped);
        args = &shaped;
        split = rt_par_contract(p, args, rt_exec_piece, &c, &st, err, sizeof err);
    } else if (args->grid) {
        split = rt_par_grid(p, args, rt_exec_piece, &c, &st, err, sizeof err);
    } else {
        if (rt_par_stream(p, args)) {
            shaped = *args;
            shaped.stream = 1;
            args = &shaped;
        }
        split = rt_par_try(p, args, rt_exec_piece, &c, result, &st, err, sizeof err);
    }
    if (!split)
        st = rt_exec_piece(&c, p, args, result, err, sizeof err);
    if (st != HG_OK)
        rt_error_set("%s", err);
    return st;
}

/* Runs op `op` through its normal form. */
hg_status rt_run_op(canon_op op, canon_args *args, int boundary_class, float *result) {
    const canon_program *p = canon_form(op);
    if (!p) {
        const canon_op_info *info = canon_op_get(op);
        return rt_error(HG_ERR_NO_MEMORY, "%s: its canonical form could not be built",
                        info ? info->name : "unknown op");
    }
    return rt_exec(p, args, boundary_class, result);
}
