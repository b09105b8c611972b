/*
 * bench/hg_bench.c — hologram's C benchmark: every elementwise, reduction, activation and
 * loss op of canon/ops.def, plus gemm and matvec, through the JIT (warm cache), the
 * interpreter, a plain C loop built by gcc -O3 -march=native (bench/ref_loops.c) and, for
 * the contractions, OpenBLAS; then the JIT's compile costs.
 *
 *   hg_bench [--quick] [--ops a,b] [--sizes 16,64Ki] [--shapes 64,4096x64x64]
 *            [--threads N] [--csv FILE] [--count]
 *
 * Progress (bench/run.py drives this): with HG_BENCH_PROGRESS_FD=N in the environment,
 * every measured case (op and size, shape, compile case) writes "step <label>\n" to file
 * descriptor N; --count prints how many steps a run with the same options makes (the
 * compile roles' steps need the JIT) and exits.
 *
 * The process started by the user is a driver: it writes the CSV header and runs itself
 * again as children (OpenBLAS and hologram read their environment at load time):
 *   main     OpenBLAS as packaged: jit, interp, gcc, openblas      (all ops and shapes)
 *   blas     OPENBLAS_CORETYPE=SkylakeX: openblas_skylakex          (gemm, matvec)
 *   cold     HOLOGRAM_CACHE_DIR=off: cold compile per kernel         (one call per op)
 *   disk     HOLOGRAM_CACHE_DIR=<fresh dir>: load from the disk cache
 * Each child appends its rows to the CSV and prints its part of the summary.
 *
 * Method: buffers are allocated once at the largest size and pre-touched; for each
 * (op, size) every implementation is called once (warm-up, JIT compile) and its result
 * checked against a double-precision loop; then implementations are timed round-robin,
 * a sample being one untimed call (the other implementations' data may have left the
 * caches) and then `calls` back-to-back timed calls (>= 0.2 ms), with the sample count
 * chosen so each implementation gets ~40 ms of timed calls (2 ms with --quick).  Best and median per-call times are
 * reported.  The benchmark measures and never asserts speed; it exits non-zero only when
 * a hologram call fails or gives a wrong result.
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hologram/hologram.h>

#include "ref_loops.h"

#ifdef HG_BENCH_OPENBLAS
#include <cblas.h>
#endif

#ifndef HG_BENCH_DEFAULT_CSV
#define HG_BENCH_DEFAULT_CSV "c.csv" /* in the working directory */
#endif

#define BENCH_MAX_LIST 32
#define BENCH_MAX_SAMPLES 200
#define BENCH_COMPILE_N 1024

/* ---- the op table, as the benchmark sees it -------------------------------------------- */

typedef enum { SIG_BIN, SIG_UN, SIG_UN1, SIG_UN2, SIG_RED, SIG_LOSS } bench_sig;
typedef enum { FAM_MAP, FAM_REDUCE, FAM_LOSS, FAM_SOFTMAX } bench_family;

typedef struct bench_op {
    const char *name;
    bench_sig sig;
    bench_family family;
    int n_in;
    union {
        hg_status (*bin)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
        hg_status (*un)(uint64_t, uint64_t, uint64_t, uint64_t);
        hg_status (*un1)(uint64_t, uint64_t, uint64_t, uint64_t, float);
        hg_status (*un2)(uint64_t, uint64_t, uint64_t, uint64_t, float, float);
        hg_status (*red)(uint64_t, uint64_t, uint64_t, uint64_t, float *);
        hg_status (*loss)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, float *);
    } fn;
} bench_op;

#define BENCH_ROW(name, sig, field, family, n_in)                                          \
    {#name, SIG_##sig, FAM_##family, n_in, {.field = hg_##name}},
#define BENCH_SIG_BIN(name, family, n_in) BENCH_ROW(name, BIN, bin, family, n_in)
#define BENCH_SIG_UN(name, family, n_in) BENCH_ROW(name, UN, un, family, n_in)
#define BENCH_SIG_UN1(name, family, n_in) BENCH_ROW(name, UN1, un1, family, n_in)
#define BENCH_SIG_UN2(name, family, n_in) BENCH_ROW(name, UN2, un2, family, n_in)
#define BENCH_SIG_RED(name, family, n_in) BENCH_ROW(name, RED, red, family, n_in)
#define BENCH_SIG_LOSS(name, family, n_in) BENCH_ROW(name, LOSS, loss, family, n_in)
#define BENCH_SIG_FILL(name, family, n_in)
#define BENCH_SIG_COPY BENCH_SIG_FILL
#define BENCH_SIG_GEMM BENCH_SIG_FILL
#define BENCH_SIG_MATVEC BENCH_SIG_FILL

static const bench_op bench_ops[] = {
#define HG_OP(name, family, sig, n_in, ...) BENCH_SIG_##sig(name, family, n_in)
#include "canon/ops.def"
#undef HG_OP
};
#define BENCH_N_OPS (sizeof bench_ops / sizeof bench_ops[0])

/* Scalar parameters by signature: scalar_add/mul get s = 1.5, clip gets [-1, 1]. */
static const float bench_params[][2] = {
    [SIG_BIN] = {0, 0}, [SIG_UN] = {0, 0},   [SIG_UN1] = {1.5f, 0},
    [SIG_UN2] = {-1, 1}, [SIG_RED] = {0, 0}, [SIG_LOSS] = {0, 0},
};

/* Data ranges (the gemm/matvec check tolerance uses the bounds of X and Y). */
#define BENCH_X_MAX 4.0f /* X: uniform in [-4, 4] */
#define BENCH_Y_MAX 2.0f /* Y: +-[0.5, 2] (a safe divisor) */

/* ---- implementations, buffers, options --------------------------------------------------- */

typedef enum { IMPL_JIT, IMPL_INTERP, IMPL_GCC, IMPL_BLAS, IMPL_COUNT } bench_impl;

/* Hologram buffers and their host twins: X, Y (general inputs / A, B), P, T (loss
 * inputs), C (output).  Host only: EXPECT (the f64 check result), READ (read-back). */
enum { BUF_X, BUF_Y, BUF_P, BUF_T, BUF_C, BUF_HG_COUNT, BUF_EXPECT = BUF_HG_COUNT, BUF_READ,
       BUF_COUNT };

typedef enum { SHAPE_GEMM, SHAPE_MATVEC } bench_shape_kind;

typedef struct bench_shape {
    bench_shape_kind kind;
    uint64_t m, n, k; /* matvec: y[m] = A[m x n] x[n], k unused */
} bench_shape;

typedef struct bench_opts {
    int quick;
    int count;                         /* --count: print the number of steps, run nothing */
    const char *csv_path;
    const char *child;                 /* role, NULL in the driver */
    int threads;
    size_t n_ops;                      /* 0: all */
    const char *ops[BENCH_MAX_LIST];
    char ops_text[1024];
    size_t n_sizes;
    uint64_t sizes[BENCH_MAX_LIST];
    size_t n_shapes;
    bench_shape shapes[2 * BENCH_MAX_LIST];
} bench_opts;

typedef struct bench_ctx {
    const bench_opts *opts;
    FILE *csv;
    uint64_t exec;
    uint64_t buf[BUF_HG_COUNT];        /* hologram buffers */
    uint64_t out1;                     /* scalar output buffer (reductions, losses) */
    float *host[BUF_COUNT];
    size_t cap;                        /* elements per buffer */
    int have_jit;
    char jit_error[256];               /* why hg_set_backend("jit") failed */
    const char *impl_names[IMPL_COUNT];
    double last_result;                /* scalar of the latest call */
    int failures;
} bench_ctx;

/* What one case runs: an elementwise op at length n, or a contraction shape. */
typedef struct bench_case {
    const bench_op *op;                /* NULL for a contraction */
    const ref_op *ref;
    const bench_shape *shape;          /* NULL for an op */
    uint64_t n;
} bench_case;

typedef struct bench_stat {
    int active;
    double best_ns, median_ns;
    int samples;
    uint64_t calls;                    /* calls per sample */
    char check[48];
    char note[160];
    double t[BENCH_MAX_SAMPLES];
} bench_stat;

static volatile float bench_sink;

/* ---- small utilities ------------------------------------------------------------------ */

/* Monotonic time in nanoseconds. */
static double bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* "12.3 us" style text for a duration (buf of >= 16 chars). */
static const char *bench_fmt_time(char *buf, size_t cap, double ns) {
    if (!(ns > 0))
        snprintf(buf, cap, "-");
    else if (ns < 1e3)
        snprintf(buf, cap, "%.1f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, cap, "%.2f us", ns / 1e3);
    else if (ns < 1e9)
        snprintf(buf, cap, "%.2f ms", ns / 1e6);
    else
        snprintf(buf, cap, "%.2f s", ns / 1e9);
    return buf;
}

/* Formats into `dst` with commas and newlines replaced so it fits a CSV field. */
static void bench_note(char *dst, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    for (char *s = dst; *s; s++)
        if (*s == ',' || *s == '\n' || *s == '"')
            *s = ';';
}

/* Deterministic uniform numbers in [0, 1). */
static double bench_rand(uint64_t *state) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*state >> 11) * 0x1.0p-53;
}

/* A positive count with an optional k/Ki/M/Mi suffix (binary multiples); 0 on error. */
static uint64_t bench_parse_count(const char *s, char **end) {
    char *e;
    unsigned long long v = strtoull(s, &e, 10);
    if (e == s)
        return 0;
    if (*e == 'k' || *e == 'K') {
        v <<= 10;
        e += e[1] == 'i' ? 2 : 1;
    } else if (*e == 'm' || *e == 'M') {
        v <<= 20;
        e += e[1] == 'i' ? 2 : 1;
    }
    *end = e;
    return v;
}

/* ---- options ---------------------------------------------------------------------------- */

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: hg_bench [--quick] [--ops name,name] [--sizes 16,1Ki,...]\n"
            "                [--shapes 64,4096x64x64,...] [--threads N] [--csv FILE]\n"
            "  --quick    sizes 16 and 64Ki, small gemm shapes, few repetitions\n"
            "  --ops      ops of canon/ops.def to run (gemm_f32, matvec_f32 included)\n"
            "  --sizes    elementwise lengths (default 16,1Ki,64Ki,1Mi,16Mi)\n"
            "  --shapes   contraction shapes: N (square) or MxNxK (gemm; matvec uses MxK)\n"
            "  --threads  HOLOGRAM_THREADS and OPENBLAS_NUM_THREADS (default 1)\n"
            "  --count    print the number of progress steps of the run and exit\n"
            "  --csv      output file (default %s)\n",
            HG_BENCH_DEFAULT_CSV);
}

/* Adds the gemm shape m x n x k and its matvec m x k (unless already listed). */
static void bench_add_shape(bench_opts *o, uint64_t m, uint64_t n, uint64_t k) {
    o->shapes[o->n_shapes++] = (bench_shape){SHAPE_GEMM, m, n, k};
    for (size_t i = 0; i < o->n_shapes; i++)
        if (o->shapes[i].kind == SHAPE_MATVEC && o->shapes[i].m == m && o->shapes[i].n == k)
            return;
    o->shapes[o->n_shapes++] = (bench_shape){SHAPE_MATVEC, m, k, 0};
}

/* Parses "64,4096x64x64" into shapes; 0 on success. */
static int bench_parse_shapes(bench_opts *o, const char *s) {
    o->n_shapes = 0;
    while (*s) {
        uint64_t d[3];
        int nd = 0;
        char *e;
        while (nd < 3) {
            d[nd] = bench_parse_count(s, &e);
            if (!d[nd])
                return -1;
            nd++;
            s = e;
            if (*s != 'x')
                break;
            s++;
        }
        if (nd == 2 || o->n_shapes + 2 > sizeof o->shapes / sizeof o->shapes[0])
            return -1;
        if (nd == 1)
            d[1] = d[2] = d[0];
        bench_add_shape(o, d[0], d[1], d[2]);
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return 0;
}

/* Parses a comma list of counts; 0 on success. */
static int bench_parse_sizes(bench_opts *o, const char *s) {
    o->n_sizes = 0;
    while (*s) {
        char *e;
        uint64_t v = bench_parse_count(s, &e);
        if (!v || v > HG_MAX_BUFFER_LENGTH || o->n_sizes == BENCH_MAX_LIST)
            return -1;
        o->sizes[o->n_sizes++] = v;
        s = e;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return 0;
}

/* Splits a comma list of op names into o->ops (pointers into o->ops_text). */
static int bench_parse_ops(bench_opts *o, const char *list) {
    char *s = o->ops_text;
    snprintf(s, sizeof o->ops_text, "%s", list);
    o->n_ops = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_ops == BENCH_MAX_LIST)
            return -1;
        o->ops[o->n_ops++] = tok;
    }
    return 0;
}

/* Parses argv into *o; 0 on success, 1 for --help, -1 on a bad argument (printed). */
static int bench_parse_args(int argc, char **argv, bench_opts *o) {
    static const uint64_t full_sizes[] = {16, 1u << 10, 1u << 16, 1u << 20, 1u << 24};
    static const uint64_t full_squares[] = {16, 32, 64, 128, 256, 512, 1024};
    const char *sizes = NULL, *shapes = NULL;
    memset(o, 0, sizeof *o);
    o->csv_path = HG_BENCH_DEFAULT_CSV;
    o->threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) {
            o->quick = 1;
        } else if (strcmp(a, "--count") == 0) {
            o->count = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            bench_usage(stdout);
            return 1;
        } else if (v && strcmp(a, "--csv") == 0) {
            o->csv_path = argv[++i];
        } else if (v && strcmp(a, "--child") == 0) {
            o->child = argv[++i];
        } else if (v && strcmp(a, "--sizes") == 0) {
            sizes = argv[++i];
        } else if (v && strcmp(a, "--shapes") == 0) {
            shapes = argv[++i];
        } else if (v && strcmp(a, "--threads") == 0) {
            o->threads = atoi(argv[++i]);
            if (o->threads < 1) {
                fprintf(stderr, "hg_bench: --threads wants a positive count\n");
                return -1;
            }
        } else if (v && strcmp(a, "--ops") == 0) {
            if (bench_parse_ops(o, argv[++i]) != 0) {
                fprintf(stderr, "hg_bench: too many --ops\n");
                return -1;
            }
        } else {
            fprintf(stderr, "hg_bench: unknown or incomplete argument '%s'\n", a);
            bench_usage(stderr);
            return -1;
        }
    }
    if (sizes) {
        if (bench_parse_sizes(o, sizes) != 0) {
            fprintf(stderr, "hg_bench: bad --sizes '%s'\n", sizes);
            return -1;
        }
    } else if (o->quick) {
        o->sizes[o->n_sizes++] = 16;
        o->sizes[o->n_sizes++] = 1u << 16;
    } else {
        for (size_t i = 0; i < sizeof full_sizes / sizeof full_sizes[0]; i++)
            o->sizes[o->n_sizes++] = full_sizes[i];
    }
    if (shapes) {
        if (bench_parse_shapes(o, shapes) != 0) {
            fprintf(stderr, "hg_bench: bad --shapes '%s'\n", shapes);
            return -1;
        }
    } else if (o->quick) {
        bench_add_shape(o, 16, 16, 16);
        bench_add_shape(o, 64, 64, 64);
    } else {
        for (size_t i = 0; i < sizeof full_squares / sizeof full_squares[0]; i++)
            bench_add_shape(o, full_squares[i], full_squares[i], full_squares[i]);
        bench_add_shape(o, 100, 100, 100); /* not a multiple of any vector width */
        bench_add_shape(o, 4096, 64, 64);
        bench_add_shape(o, 64, 4096, 64);
        bench_add_shape(o, 1, 1024, 1024);
    }
    for (size_t i = 0; i < o->n_ops; i++) {
        int known = strcmp(o->ops[i], "gemm_f32") == 0 || strcmp(o->ops[i], "matvec_f32") == 0;
        for (size_t j = 0; j < BENCH_N_OPS && !known; j++)
            known = strcmp(o->ops[i], bench_ops[j].name) == 0;
        if (!known) {
            fprintf(stderr, "hg_bench: unknown op '%s' in --ops\n", o->ops[i]);
            return -1;
        }
    }
    return 0;
}

/* 1 when `name` is selected by --ops (or no --ops was given). */
static int bench_selected(const bench_opts *o, const char *name) {
    if (o->n_ops == 0)
        return 1;
    for (size_t i = 0; i < o->n_ops; i++)
        if (strcmp(o->ops[i], name) == 0)
            return 1;
    return 0;
}

/* One step done (see the top): "step <label>" to HG_BENCH_PROGRESS_FD, if set. */
static void bench_progress(const char *op, const char *size) {
    static int fd = -2;
    if (fd == -2) {
        const char *s = getenv("HG_BENCH_PROGRESS_FD");
        fd = s && *s ? atoi(s) : -1;
    }
    if (fd >= 0)
        dprintf(fd, "step %s %s\n", op, size);
}

/* ---- calls -------------------------------------------------------------------------------- */

/* One hologram call of the case on the current backend; keeps its scalar result. */
static hg_status bench_call_hg(bench_ctx *cx, const bench_case *bc) {
    const uint64_t e = cx->exec, c = cx->buf[BUF_C];
    hg_status st;
    float r = 0;
    if (bc->shape) {
        const bench_shape *s = bc->shape;
        if (s->kind == SHAPE_GEMM)
            return hg_gemm_f32(e, cx->buf[BUF_X], cx->buf[BUF_Y], c, s->m, s->n, s->k);
        return hg_matvec_f32(e, cx->buf[BUF_X], cx->buf[BUF_Y], c, s->m, s->n);
    }
    const bench_op *op = bc->op;
    const int loss = op->family == FAM_LOSS;
    const uint64_t a = cx->buf[loss ? BUF_P : BUF_X], b = cx->buf[loss ? BUF_T : BUF_Y];
    const float *par = bench_params[op->sig];
    switch (op->sig) {
    case SIG_BIN: return op->fn.bin(e, a, b, c, bc->n);
    case SIG_UN: return op->fn.un(e, a, c, bc->n);
    case SIG_UN1: return op->fn.un1(e, a, c, bc->n, par[0]);
    case SIG_UN2: return op->fn.un2(e, a, c, bc->n, par[0], par[1]);
    case SIG_RED: st = op->fn.red(e, a, cx->out1, bc->n, &r); break;
    case SIG_LOSS: st = op->fn.loss(e, a, b, cx->out1, bc->n, &r); break;
    default: return HG_ERR_INTERNAL;
    }
    bench_sink = r;
    cx->last_result = r;
    return st;
}

/* One call of the plain C loop (f64: the check variant, into EXPECT). */
static void bench_call_ref(bench_ctx *cx, const bench_case *bc, int f64, double *scale) {
    float *out = cx->host[f64 ? BUF_EXPECT : BUF_C];
    if (bc->shape) {
        const bench_shape *s = bc->shape;
        const float *a = cx->host[BUF_X], *b = cx->host[BUF_Y];
        if (s->kind == SHAPE_GEMM)
            (f64 ? ref_gemm_f64 : ref_gemm_f32)(a, b, out, s->m, s->n, s->k);
        else
            (f64 ? ref_matvec_f64 : ref_matvec_f32)(a, b, out, s->m, s->n);
        return;
    }
    const int loss = bc->op->family == FAM_LOSS;
    const float *par = bench_params[bc->op->sig];
    cx->last_result = (f64 ? bc->ref->f64 : bc->ref->f32)(
        cx->host[loss ? BUF_P : BUF_X], cx->host[loss ? BUF_T : BUF_Y], out, bc->n, par[0],
        par[1], scale);
    bench_sink = (float)cx->last_result;
}

#ifdef HG_BENCH_OPENBLAS
/* One OpenBLAS call of a contraction case. */
static void bench_call_blas(bench_ctx *cx, const bench_case *bc) {
    const bench_shape *s = bc->shape;
    const float *a = cx->host[BUF_X], *b = cx->host[BUF_Y];
    float *c = cx->host[BUF_C];
    if (s->kind == SHAPE_GEMM)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)s->m, (blasint)s->n,
                    (blasint)s->k, 1.0f, a, (blasint)s->k, b, (blasint)s->n, 0.0f, c,
                    (blasint)s->n);
    else
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)s->m, (blasint)s->n, 1.0f, a,
                    (blasint)s->n, b, 1, 0.0f, c, 1);
}
#endif

/* Selects the hologram backend of a hologram impl; 0 on success. */
static int bench_backend(bench_impl impl) {
    return hg_set_backend(impl == IMPL_JIT ? "jit" : "interp") == HG_OK ? 0 : -1;
}

/* One call of `impl`; 0 on success, else -1 with the message in err. */
static int bench_call(bench_ctx *cx, const bench_case *bc, bench_impl impl, char *err,
                      size_t cap) {
    double scale = 0;
    switch (impl) {
    case IMPL_JIT:
    case IMPL_INTERP: {
        hg_status st = bench_call_hg(cx, bc);
        if (st != HG_OK) {
            bench_note(err, cap, "%s: %s", hg_status_string(st), hg_last_error());
            return -1;
        }
        return 0;
    }
    case IMPL_GCC: bench_call_ref(cx, bc, 0, &scale); return 0;
    case IMPL_BLAS:
#ifdef HG_BENCH_OPENBLAS
        bench_call_blas(cx, bc);
        return 0;
#endif
    default: bench_note(err, cap, "not available"); return -1;
    }
}

/* ---- checking ------------------------------------------------------------------------------ */

/* Elements of the case's array result (0 for scalar results). */
static uint64_t bench_out_len(const bench_case *bc) {
    if (bc->shape)
        return bc->shape->kind == SHAPE_GEMM ? bc->shape->m * bc->shape->n : bc->shape->m;
    return bc->op->family == FAM_MAP || bc->op->family == FAM_SOFTMAX ? bc->n : 0;
}

/* Error of `got` (array) or `got_scalar` against the f64 result, as a multiple of the
 * tolerance the API promises (<= 1 passes).  `scale` is sum |term| of the f64 loop. */
static double bench_error(const bench_case *bc, const float *got, double got_scalar,
                          const float *expect, double expect_scalar, double scale) {
    const double lg = bc->n > 2 ? log2((double)bc->n) : 1.0;
    double worst = 0, abs_tol = 0, rel_tol = 0;
    uint64_t len = bench_out_len(bc);
    if (bc->shape) {
        uint64_t k = bc->shape->kind == SHAPE_GEMM ? bc->shape->k : bc->shape->n;
        abs_tol = 1e-5 * (double)k * BENCH_X_MAX * BENCH_Y_MAX;
    } else if (bc->op->family == FAM_MAP) {
        rel_tol = 1e-6;
        abs_tol = 1e-7;
    } else if (bc->op->family == FAM_SOFTMAX) {
        rel_tol = 1e-6 * (3 + lg);
    } else {
        double tol = bc->op->family == FAM_LOSS
                         ? (1e-6 * lg + 2e-6) * scale / (double)bc->n + 1e-6 * fabs(expect_scalar)
                         : 1e-6 * lg * scale; /* sum; min/max must be exact */
        double d = fabs(got_scalar - expect_scalar);
        if (d == 0)
            return 0;
        return tol > 0 && d <= 1e300 ? d / tol : INFINITY;
    }
    for (uint64_t i = 0; i < len; i++) {
        double d = fabs((double)got[i] - expect[i]);
        double tol = rel_tol * fabs((double)expect[i]) + abs_tol;
        if (!(d <= 1e300))
            return INFINITY;
        if (d > 0)
            worst = fmax(worst, tol > 0 ? d / tol : INFINITY);
    }
    return worst;
}

/* Checks the result of the latest call of `impl` against EXPECT; fills st->check. */
static void bench_check(bench_ctx *cx, const bench_case *bc, bench_impl impl, double expect_r,
                        double scale, bench_stat *st) {
    const float *got = cx->host[BUF_C];
    uint64_t len = bench_out_len(bc);
    if ((impl == IMPL_JIT || impl == IMPL_INTERP) && len) {
        if (hg_buffer_read(cx->exec, cx->buf[BUF_C], cx->host[BUF_READ], len) != HG_OK) {
            snprintf(st->check, sizeof st->check, "FAIL(read)");
            cx->failures++;
            return;
        }
        got = cx->host[BUF_READ];
    }
    double e = bench_error(bc, got, cx->last_result, cx->host[BUF_EXPECT], expect_r, scale);
    if (e <= 1)
        snprintf(st->check, sizeof st->check, "ok");
    else if (impl == IMPL_JIT || impl == IMPL_INTERP) {
        snprintf(st->check, sizeof st->check, "FAIL(err/tol=%.3g)", e);
        cx->failures++;
    } else {
        snprintf(st->check, sizeof st->check, "loose(err/tol=%.3g)", e);
    }
}

/* ---- measuring -------------------------------------------------------------------------- */

/* Warm-up, check and calibration of one impl; 0 when it can be timed. */
static int bench_prepare(bench_ctx *cx, const bench_case *bc, bench_impl impl, double expect_r,
                         double scale, bench_stat *st) {
    const int quick = cx->opts->quick;
    const double sample_ns = quick ? 50e3 : 200e3, budget_ns = quick ? 2e6 : 40e6;
    char err[128];
    hg_cache_stats before = {0}, after = {0};
    if (impl == IMPL_JIT || impl == IMPL_INTERP) {
        if (bench_backend(impl) != 0) {
            bench_note(st->note, sizeof st->note, "backend unavailable: %s", hg_last_error());
            return -1;
        }
        hg_cache_stats_get(&before);
    }
    double t0 = bench_now_ns();
    if (bench_call(cx, bc, impl, err, sizeof err) != 0) {
        bench_note(st->note, sizeof st->note, "error: %s", err);
        if (impl == IMPL_JIT || impl == IMPL_INTERP)
            cx->failures++;
        return -1;
    }
    double t = bench_now_ns() - t0;
    if (impl == IMPL_JIT) {
        hg_cache_stats_get(&after);
        if (after.fallbacks > before.fallbacks)
            bench_note(st->note, sizeof st->note, "jit fell back to the interpreter");
        else if (after.hits + after.misses == before.hits + before.misses)
            bench_note(st->note, sizeof st->note, "no kernel-cache activity (interpreter?)");
    }
    bench_check(cx, bc, impl, expect_r, scale, st);
    if (t < 20e6) { /* short calls: re-time without the warm-up's one-off costs */
        for (int r = 0; r < 2; r++) {
            t0 = bench_now_ns();
            bench_call(cx, bc, impl, err, sizeof err);
            t = fmin(t, bench_now_ns() - t0);
        }
    }
    t = fmax(t, 1.0);
    st->calls = t >= sample_ns ? 1 : (uint64_t)ceil(sample_ns / t);
    int nmin = t > 1e9 ? 1 : t > 1e8 ? 2 : quick ? 3 : 5;
    int nmax = quick ? 20 : BENCH_MAX_SAMPLES;
    double n = budget_ns / (t * (double)st->calls);
    st->samples = n < nmin ? nmin : n > nmax ? nmax : (int)n;
    st->active = 1;
    return 0;
}

/* Measures the impls of one case, interleaved round-robin; fills stats[impl]. */
static void bench_measure(bench_ctx *cx, const bench_case *bc, const bench_impl *impls,
                          int n_impl, bench_stat *stats) {
    double scale = 0, expect_r;
    bench_call_ref(cx, bc, 1, &scale);
    expect_r = cx->last_result;
    int rounds = 0;
    for (int i = 0; i < n_impl; i++) {
        bench_stat *st = &stats[impls[i]];
        memset(st, 0, sizeof *st);
        if (bench_prepare(cx, bc, impls[i], expect_r, scale, st) == 0 && st->samples > rounds)
            rounds = st->samples;
    }
    char err[128];
    int done[IMPL_COUNT] = {0};
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n_impl; i++) {
            bench_stat *st = &stats[impls[i]];
            if (!st->active || r >= st->samples)
                continue;
            if ((impls[i] == IMPL_JIT || impls[i] == IMPL_INTERP) && bench_backend(impls[i]))
                continue;
            /* one untimed call first: the previous impl's data may have evicted ours */
            int fails = bench_call(cx, bc, impls[i], err, sizeof err);
            double t0 = bench_now_ns();
            for (uint64_t c = 0; c < st->calls; c++)
                fails |= bench_call(cx, bc, impls[i], err, sizeof err);
            double t = (bench_now_ns() - t0) / (double)st->calls;
            if (fails) {
                bench_note(st->note, sizeof st->note, "error while timing: %s", err);
                st->active = 0;
                cx->failures++;
                continue;
            }
            st->t[done[impls[i]]++] = t;
        }
    }
    for (int i = 0; i < n_impl; i++) {
        bench_stat *st = &stats[impls[i]];
        if (!st->active || done[impls[i]] == 0)
            continue;
        st->samples = done[impls[i]];
        st->median_ns = bench_median(st->t, st->samples);
        st->best_ns = st->t[0];
    }
}

/* ---- output ----------------------------------------------------------------------------- */

static const char *const bench_csv_header =
    "kind,op,size,m,n,k,impl,best_ns,median_ns,gbps,gflops,samples,calls,check,note\n";

/* Bytes an elementwise case reads and writes (each input and array output once). */
static double bench_bytes(const bench_case *bc) {
    if (bc->shape) {
        const bench_shape *s = bc->shape;
        return s->kind == SHAPE_GEMM ? 4.0 * (double)(s->m * s->k + s->k * s->n + s->m * s->n)
                                     : 4.0 * (double)(s->m * s->n + s->n + s->m);
    }
    return 4.0 * (double)bc->n * (double)(bc->op->n_in + (bench_out_len(bc) ? 1 : 0));
}

/* Floating-point operations of a contraction case (0 for elementwise ones). */
static double bench_flops(const bench_case *bc) {
    if (!bc->shape)
        return 0;
    const bench_shape *s = bc->shape;
    return s->kind == SHAPE_GEMM ? 2.0 * (double)s->m * (double)s->n * (double)s->k
                                 : 2.0 * (double)s->m * (double)s->n;
}

/* The case's op name and size label ("1048576", "4096x64x64", "4096x64"). */
static void bench_case_label(const bench_case *bc, const char **op, char *size, size_t cap) {
    if (bc->shape) {
        const bench_shape *s = bc->shape;
        *op = s->kind == SHAPE_GEMM ? "gemm_f32" : "matvec_f32";
        if (s->kind == SHAPE_GEMM)
            snprintf(size, cap, "%llux%llux%llu", (unsigned long long)s->m,
                     (unsigned long long)s->n, (unsigned long long)s->k);
        else
            snprintf(size, cap, "%llux%llu", (unsigned long long)s->m, (unsigned long long)s->n);
    } else {
        *op = bc->op->name;
        snprintf(size, cap, "%llu", (unsigned long long)bc->n);
    }
}

/* bench_progress for a measured case. */
static void bench_step(const bench_case *bc) {
    const char *op;
    char size[64];
    bench_case_label(bc, &op, size, sizeof size);
    bench_progress(op, size);
}

/* The number of steps (bench_progress calls) of a run with options o, the JIT present. */
static size_t bench_steps(const bench_opts *o) {
    size_t ops = 0, shapes = 0, blas = 0;
    for (size_t i = 0; i < BENCH_N_OPS; i++)
        ops += bench_selected(o, bench_ops[i].name) && ref_find(bench_ops[i].name);
    for (size_t i = 0; i < o->n_shapes; i++)
        shapes += bench_selected(o, o->shapes[i].kind == SHAPE_GEMM ? "gemm_f32" : "matvec_f32");
#ifdef HG_BENCH_OPENBLAS
    blas = shapes;
#endif
    size_t compile = 0;
    for (size_t i = 0; i < BENCH_N_OPS; i++)
        compile += bench_selected(o, bench_ops[i].name);
    compile += bench_selected(o, "gemm_f32") + bench_selected(o, "matvec_f32");
    return o->n_sizes * ops + shapes + blas + 2 * compile;
}

/* Appends one CSV row per measured impl of the case. */
static void bench_write_rows(bench_ctx *cx, const bench_case *bc, const bench_impl *impls,
                             int n_impl, const bench_stat *stats) {
    const char *op;
    char size[64];
    bench_case_label(bc, &op, size, sizeof size);
    const bench_shape *s = bc->shape;
    for (int i = 0; i < n_impl; i++) {
        const bench_stat *st = &stats[impls[i]];
        double gbps = st->best_ns > 0 ? bench_bytes(bc) / st->best_ns : 0;
        double gflops = st->best_ns > 0 ? bench_flops(bc) / st->best_ns : 0;
        fprintf(cx->csv, "%s,%s,%s,%llu,%llu,%llu,%s,%.1f,%.1f,%.4g,%.4g,%d,%llu,%s,%s\n",
                s ? (s->kind == SHAPE_GEMM ? "gemm" : "matvec") : "elem", op, size,
                (unsigned long long)(s ? s->m : 1), (unsigned long long)(s ? s->n : bc->n),
                (unsigned long long)(s ? s->k : 0), cx->impl_names[impls[i]], st->best_ns,
                st->median_ns, gbps, gflops, st->active ? st->samples : 0,
                (unsigned long long)st->calls, st->active ? st->check : "-", st->note);
    }
    fflush(cx->csv);
}

/* Prints one summary line: best time of each impl, then each other impl's time / JIT's. */
static void bench_print_line(bench_ctx *cx, const bench_case *bc, const bench_impl *impls,
                             int n_impl, const bench_stat *stats) {
    const char *op;
    char size[64], tb[32];
    bench_case_label(bc, &op, size, sizeof size);
    printf("%-30s %-11s", op, size);
    for (int i = 0; i < n_impl; i++) {
        const bench_stat *st = &stats[impls[i]];
        printf(" %s %-9s", cx->impl_names[impls[i]],
               st->active ? bench_fmt_time(tb, sizeof tb, st->best_ns) : "n/a");
        if (st->active && bc->shape)
            printf("(%5.1f GF/s)", bench_flops(bc) / st->best_ns);
    }
    const bench_stat *jit = &stats[IMPL_JIT];
    for (int i = 0; i < n_impl; i++) {
        const bench_stat *st = &stats[impls[i]];
        if (impls[i] != IMPL_JIT && jit->active && st->active)
            printf(" %s/jit %.2fx", cx->impl_names[impls[i]], st->best_ns / jit->best_ns);
    }
    for (int i = 0; i < n_impl; i++) {
        const bench_stat *st = &stats[impls[i]];
        if (st->note[0] || (st->active && strncmp(st->check, "ok", 2) != 0))
            printf("  [%s: %s%s%s]", cx->impl_names[impls[i]], st->active ? st->check : "",
                   st->note[0] && st->active ? " " : "", st->note);
    }
    printf("\n");
    fflush(stdout);
}

/* Appends an info row (kind=info) to the CSV. */
static void bench_info(bench_ctx *cx, const char *what, const char *fmt, ...) {
    char note[256], raw[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    bench_note(note, sizeof note, "%s", raw);
    fprintf(cx->csv, "info,%s,,,,,,,,,,,,,%s\n", what, note);
    fflush(cx->csv);
}

/* ---- set-up ---------------------------------------------------------------------------- */

/* Allocates, fills and pre-touches the hologram buffers and host arrays (cap elements
 * each); 0 on success. */
static int bench_setup(bench_ctx *cx, size_t cap) {
    hg_status st = hg_new_executor(&cx->exec);
    if (st != HG_OK) {
        fprintf(stderr, "hg_bench: hg_new_executor: %s\n", hg_last_error());
        return -1;
    }
    cx->cap = cap;
    for (int b = 0; b < BUF_COUNT; b++) {
        size_t bytes = (cap * sizeof(float) + 63) / 64 * 64;
        cx->host[b] = aligned_alloc(64, bytes);
        if (!cx->host[b]) {
            fprintf(stderr, "hg_bench: out of memory (%zu bytes)\n", bytes);
            return -1;
        }
        memset(cx->host[b], 0, bytes);
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < cap; i++) {
        double y = 0.5 + 1.5 * bench_rand(&seed);
        cx->host[BUF_X][i] = (float)(BENCH_X_MAX * (2 * bench_rand(&seed) - 1));
        cx->host[BUF_Y][i] = (float)(bench_rand(&seed) < 0.5 ? -y : y);
        cx->host[BUF_P][i] = (float)(0.01 + 0.98 * bench_rand(&seed));
        cx->host[BUF_T][i] = (float)bench_rand(&seed);
    }
    for (int b = 0; b < BUF_HG_COUNT && st == HG_OK; b++) {
        st = hg_executor_allocate_buffer(cx->exec, cap, &cx->buf[b]);
        if (st == HG_OK) /* writing every element also pre-touches C (zeros) */
            st = hg_buffer_write(cx->exec, cx->buf[b], cx->host[b], cap);
    }
    if (st == HG_OK)
        st = hg_executor_allocate_buffer(cx->exec, 16, &cx->out1);
    if (st != HG_OK) {
        fprintf(stderr, "hg_bench: buffer set-up: %s: %s\n", hg_status_string(st),
                hg_last_error());
        return -1;
    }
    return 0;
}

/* Opens the CSV for appending and sets the names; 0 on success. */
static int bench_open(bench_ctx *cx, const bench_opts *o) {
    memset(cx, 0, sizeof *cx);
    cx->opts = o;
    cx->csv = fopen(o->csv_path, "a");
    if (!cx->csv) {
        fprintf(stderr, "hg_bench: cannot open %s: %s\n", o->csv_path, strerror(errno));
        return -1;
    }
    cx->impl_names[IMPL_JIT] = "jit";
    cx->impl_names[IMPL_INTERP] = "interp";
    cx->impl_names[IMPL_GCC] = "gcc";
    cx->impl_names[IMPL_BLAS] = "openblas";
    cx->have_jit = hg_set_backend("jit") == HG_OK;
    if (!cx->have_jit)
        snprintf(cx->jit_error, sizeof cx->jit_error, "%s", hg_last_error());
    return 0;
}

/* Frees what bench_setup made and closes the CSV. */
static void bench_close(bench_ctx *cx) {
    if (cx->exec)
        hg_executor_cleanup(cx->exec);
    for (int b = 0; b < BUF_COUNT; b++)
        free(cx->host[b]);
    if (cx->csv)
        fclose(cx->csv);
}

/* Largest element count any selected case needs. */
static size_t bench_capacity(const bench_opts *o, int elementwise) {
    uint64_t cap = 16;
    for (size_t i = 0; elementwise && i < o->n_sizes; i++)
        cap = o->sizes[i] > cap ? o->sizes[i] : cap;
    for (size_t i = 0; i < o->n_shapes; i++) {
        const bench_shape *s = &o->shapes[i];
        uint64_t k = s->kind == SHAPE_GEMM ? s->k : s->n, n = s->kind == SHAPE_GEMM ? s->n : 1;
        uint64_t need = s->m * k;
        need = k * n > need ? k * n : need;
        need = s->m * n > need ? s->m * n : need;
        cap = need > cap ? need : cap;
    }
    return (size_t)cap;
}

/* The OpenBLAS core in use ("none" without OpenBLAS). */
static const char *bench_blas_core(void) {
#ifdef HG_BENCH_OPENBLAS
    return openblas_get_corename();
#else
    return "none";
#endif
}

/* ---- child roles ------------------------------------------------------------------------ */

/* Runs the contraction shapes with the given impls. */
static void bench_contractions(bench_ctx *cx, const bench_impl *impls, int n_impl) {
    static bench_stat stats[IMPL_COUNT];
    for (size_t i = 0; i < cx->opts->n_shapes; i++) {
        const bench_shape *s = &cx->opts->shapes[i];
        if (!bench_selected(cx->opts, s->kind == SHAPE_GEMM ? "gemm_f32" : "matvec_f32"))
            continue;
        bench_case bc = {.shape = s};
        bench_measure(cx, &bc, impls, n_impl, stats);
        bench_write_rows(cx, &bc, impls, n_impl, stats);
        bench_print_line(cx, &bc, impls, n_impl, stats);
        bench_step(&bc);
    }
}

/* Role "main": every elementwise op and size, then the contractions. */
static void bench_role_main(bench_ctx *cx) {
    static bench_stat stats[IMPL_COUNT];
    bench_impl impls[IMPL_COUNT];
    int n_impl = 0;
    const char *version = "?";
    hg_get_version(&version);
    if (cx->have_jit)
        impls[n_impl++] = IMPL_JIT;
    else
        printf("JIT unavailable (hg_set_backend(\"jit\"): %s): measuring without it\n",
               cx->jit_error);
    impls[n_impl++] = IMPL_INTERP;
    impls[n_impl++] = IMPL_GCC;
    bench_info(cx, "hologram_version", "%s", version);
    bench_info(cx, "jit", "%s%s", cx->have_jit ? "available" : "unavailable: ", cx->jit_error);
    bench_info(cx, "compiler", "%s -O3 -march=native (bench/ref_loops.c)", ref_compiler());
    bench_info(cx, "openblas_core", "%s", bench_blas_core());
    bench_info(cx, "threads", "HOLOGRAM_THREADS=%s OPENBLAS_NUM_THREADS=%s",
               getenv("HOLOGRAM_THREADS") ? getenv("HOLOGRAM_THREADS") : "unset",
               getenv("OPENBLAS_NUM_THREADS") ? getenv("OPENBLAS_NUM_THREADS") : "unset");
    printf("hologram %s; reference loops: %s -O3 -march=native; OpenBLAS core (packaged): "
           "%s\n",
           version, ref_compiler(), bench_blas_core());
    printf("best per-call time of each path; x/jit = that path's time over the JIT's "
           "(> 1: the JIT is faster)\n");
    for (size_t si = 0; si < cx->opts->n_sizes; si++)
        for (size_t oi = 0; oi < BENCH_N_OPS; oi++) {
            const bench_op *op = &bench_ops[oi];
            if (!bench_selected(cx->opts, op->name))
                continue;
            bench_case bc = {.op = op, .ref = ref_find(op->name), .n = cx->opts->sizes[si]};
            if (!bc.ref) {
                fprintf(stderr, "hg_bench: no reference loop for %s\n", op->name);
                cx->failures++;
                continue;
            }
            bench_measure(cx, &bc, impls, n_impl, stats);
            bench_write_rows(cx, &bc, impls, n_impl, stats);
            bench_print_line(cx, &bc, impls, n_impl, stats);
            bench_step(&bc);
        }
#ifdef HG_BENCH_OPENBLAS
    impls[n_impl++] = IMPL_BLAS;
#endif
    bench_contractions(cx, impls, n_impl);
}

/* Role "blas": the contractions through OpenBLAS under OPENBLAS_CORETYPE. */
static void bench_role_blas(bench_ctx *cx) {
#ifdef HG_BENCH_OPENBLAS
    const bench_impl impls[] = {IMPL_BLAS};
    cx->impl_names[IMPL_BLAS] = "openblas_skylakex";
    bench_info(cx, "openblas_core_skylakex", "%s", bench_blas_core());
    printf("OpenBLAS with OPENBLAS_CORETYPE=%s: core %s\n",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "unset",
           bench_blas_core());
    bench_contractions(cx, impls, 1);
#else
    (void)cx;
    printf("built without OpenBLAS: no SkylakeX comparison\n");
#endif
}

/* Role "cold" / "disk": per op, drop the in-memory cache and time the first call, which
 * compiles (cold: disk cache off) or loads the object from disk (disk: after one pass that
 * fills it).  Rows: cold_compile / disk_load (LLVM seconds per kernel from the cache
 * counters) and cold_call / disk_call (wall time of that first call). */
static void bench_role_compile(bench_ctx *cx, int disk) {
    const int reps = cx->opts->quick ? 1 : 3;
    static const bench_shape gemm = {SHAPE_GEMM, 64, 64, 64}, matvec = {SHAPE_MATVEC, 64, 64, 0};
    bench_case cases[BENCH_N_OPS + 2];
    size_t n_cases = 0;
    char err[128];
    if (!cx->have_jit) {
        printf("JIT unavailable (%s): %s costs not measured\n", cx->jit_error,
               disk ? "disk-cache" : "compile");
        return;
    }
    for (size_t i = 0; i < BENCH_N_OPS; i++)
        if (bench_selected(cx->opts, bench_ops[i].name))
            cases[n_cases++] = (bench_case){.op = &bench_ops[i], .n = BENCH_COMPILE_N};
    if (bench_selected(cx->opts, "gemm_f32"))
        cases[n_cases++] = (bench_case){.shape = &gemm};
    if (bench_selected(cx->opts, "matvec_f32"))
        cases[n_cases++] = (bench_case){.shape = &matvec};
    /* A first call creates the JIT session (not a per-kernel cost); the disk role also
     * fills the disk cache with every kernel. */
    bench_case warm = {.op = &bench_ops[0], .n = 3};
    if (bench_call(cx, &warm, IMPL_JIT, err, sizeof err) != 0) {
        printf("JIT warm-up failed: %s\n", err);
        cx->failures++;
        return;
    }
    for (size_t c = 0; disk && c < n_cases; c++)
        bench_call(cx, &cases[c], IMPL_JIT, err, sizeof err);
    double per_kernel[BENCH_N_OPS + 2], wall_med[BENCH_N_OPS + 2];
    for (size_t c = 0; c < n_cases; c++) {
        double kern[3] = {0}, wall[3] = {0}, kbest = INFINITY, wbest = INFINITY;
        uint64_t kernels = 0;
        char note[160] = "";
        int done = 0;
        for (int r = 0; r < reps; r++) {
            hg_cache_stats s;
            hg_cache_reset();
            double t0 = bench_now_ns();
            if (bench_call(cx, &cases[c], IMPL_JIT, err, sizeof err) != 0) {
                bench_note(note, sizeof note, "error: %s", err);
                cx->failures++;
                break;
            }
            wall[r] = bench_now_ns() - t0;
            hg_cache_stats_get(&s);
            kernels = disk ? s.disk_loads : s.compiles;
            kern[r] = kernels ? 1e9 * (disk ? s.disk_load_seconds : s.compile_seconds) /
                                    (double)kernels
                              : 0;
            if (!kernels)
                bench_note(note, sizeof note, "no %s (compiles %llu; disk loads %llu)",
                           disk ? "disk load" : "compile", (unsigned long long)s.compiles,
                           (unsigned long long)s.disk_loads);
            kbest = fmin(kbest, kern[r]);
            wbest = fmin(wbest, wall[r]);
            done++;
        }
        const char *op;
        char size[64];
        bench_case_label(&cases[c], &op, size, sizeof size);
        per_kernel[c] = done ? bench_median(kern, done) : 0;
        wall_med[c] = done ? bench_median(wall, done) : 0;
        if (!done)
            kbest = wbest = 0;
        fprintf(cx->csv, "compile,%s,%s,,,,%s,%.1f,%.1f,,,%d,%llu,-,%s\n", op, size,
                disk ? "disk_load" : "cold_compile", kbest, per_kernel[c], done,
                (unsigned long long)kernels, note);
        fprintf(cx->csv, "compile,%s,%s,,,,%s,%.1f,%.1f,,,%d,1,-,%s\n", op, size,
                disk ? "disk_call" : "cold_call", wbest, wall_med[c], done, note);
        bench_progress(op, disk ? "disk load" : "cold compile");
    }
    fflush(cx->csv);
    char t1[32], t2[32];
    if (n_cases) {
        printf("%s over %zu ops: median %s per kernel (LLVM/disk counters), median first "
               "call %s\n",
               disk ? "disk-cache load" : "cold compile", n_cases,
               bench_fmt_time(t1, sizeof t1, bench_median(per_kernel, (int)n_cases)),
               bench_fmt_time(t2, sizeof t2, bench_median(wall_med, (int)n_cases)));
    }
}

/* Runs one child role; returns the process exit status. */
static int bench_child(const bench_opts *o) {
    bench_ctx cx;
    int rc = 0;
    if (bench_open(&cx, o) != 0)
        return 2;
    int compile = strcmp(o->child, "cold") == 0 || strcmp(o->child, "disk") == 0;
    size_t cap = compile ? (size_t)BENCH_COMPILE_N * 64
                         : bench_capacity(o, strcmp(o->child, "main") == 0);
    if (bench_setup(&cx, cap) != 0) {
        bench_close(&cx);
        return 2;
    }
    if (strcmp(o->child, "main") == 0)
        bench_role_main(&cx);
    else if (strcmp(o->child, "blas") == 0)
        bench_role_blas(&cx);
    else if (compile)
        bench_role_compile(&cx, strcmp(o->child, "disk") == 0);
    else {
        fprintf(stderr, "hg_bench: unknown child role '%s'\n", o->child);
        rc = 2;
    }
    if (cx.failures) {
        printf("%d hologram call(s) failed or gave wrong results (see check/note)\n",
               cx.failures);
        rc = rc ? rc : 1;
    }
    bench_close(&cx);
    return rc;
}

/* ---- driver --------------------------------------------------------------------------- */

/* nftw callback: removes one entry of the temporary cache directory. */
static int bench_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb;
    (void)flag;
    (void)f;
    return remove(path);
}

/* Runs this program again as child `role` with `env` (NAME=value, or NAME= to unset);
 * returns the child's exit status (127 if it could not start). */
static int bench_spawn(int argc, char **argv, const char *role, const char *const *env) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "hg_bench: fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) {
        char *args[2 * BENCH_MAX_LIST + 8];
        int n = 0;
        for (int i = 0; i < argc && n < (int)(sizeof args / sizeof args[0]) - 3; i++)
            args[n++] = argv[i];
        args[n++] = "--child";
        args[n++] = (char *)role;
        args[n] = NULL;
        for (; *env; env++) {
            char name[64];
            const char *eq = strchr(*env, '=');
            snprintf(name, sizeof name, "%.*s", (int)(eq - *env), *env);
            if (eq[1])
                setenv(name, eq + 1, 1);
            else
                unsetenv(name);
        }
        execv("/proc/self/exe", args);
        fprintf(stderr, "hg_bench: exec: %s\n", strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The driver: CSV header, then the four children in turn. */
static int bench_driver(int argc, char **argv, const bench_opts *o) {
    char threads[64], blas_threads[64], cache_dir[64] = "/tmp/hg_bench_cache.XXXXXX",
                                        cache_env[96];
    FILE *csv = fopen(o->csv_path, "w");
    if (!csv) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", o->csv_path);
        char *slash = strrchr(dir, '/');
        if (slash) { /* create the results directory (one level) and retry */
            *slash = '\0';
            mkdir(dir, 0777);
            csv = fopen(o->csv_path, "w");
        }
    }
    if (!csv) {
        fprintf(stderr, "hg_bench: cannot write %s: %s\n", o->csv_path, strerror(errno));
        return 2;
    }
    fputs(bench_csv_header, csv);
    fclose(csv);
    snprintf(threads, sizeof threads, "HOLOGRAM_THREADS=%d", o->threads);
    snprintf(blas_threads, sizeof blas_threads, "OPENBLAS_NUM_THREADS=%d", o->threads);
    if (!mkdtemp(cache_dir)) {
        fprintf(stderr, "hg_bench: mkdtemp: %s\n", strerror(errno));
        return 2;
    }
    snprintf(cache_env, sizeof cache_env, "HOLOGRAM_CACHE_DIR=%s", cache_dir);
    const char *main_env[] = {threads, blas_threads, "OPENBLAS_CORETYPE=", NULL};
    const char *blas_env[] = {threads, blas_threads, "OPENBLAS_CORETYPE=SkylakeX", NULL};
    const char *cold_env[] = {threads, blas_threads, "HOLOGRAM_CACHE_DIR=off", NULL};
    const char *disk_env[] = {threads, blas_threads, cache_env, NULL};
    printf("== JIT vs interpreter vs gcc -O3 loop (vs OpenBLAS as packaged for gemm/matvec) ==\n");
    int rc_main = bench_spawn(argc, argv, "main", main_env);
    printf("\n== OpenBLAS with OPENBLAS_CORETYPE=SkylakeX ==\n");
    int rc_blas = bench_spawn(argc, argv, "blas", blas_env);
    printf("\n== compile costs (n = %d; gemm/matvec 64) ==\n", BENCH_COMPILE_N);
    int rc_cold = bench_spawn(argc, argv, "cold", cold_env);
    int rc_disk = bench_spawn(argc, argv, "disk", disk_env);
    nftw(cache_dir, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("\nCSV: %s\n", o->csv_path);
    int rc = rc_main ? rc_main : rc_blas ? rc_blas : rc_cold ? rc_cold : rc_disk;
    if (rc)
        printf("hg_bench: a part failed (main %d, blas %d, cold %d, disk %d)\n", rc_main,
               rc_blas, rc_cold, rc_disk);
    return rc;
}

int main(int argc, char **argv) {
    bench_opts o;
    int p = bench_parse_args(argc, argv, &o);
    if (p)
        return p > 0 ? 0 : 2;
    if (o.count) {
        printf("%zu\n", bench_steps(&o));
        return 0;
    }
    return o.child ? bench_child(&o) : bench_driver(argc, argv, &o);
}
