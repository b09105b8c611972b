/*
 * tests/test_parallel.c — large ops split across threads (runtime/parallel.c): how the
 * range is cut, and that the split results equal one thread's — bit for bit for every map
 * of canon/ops.def, exactly for min/max (NaN and -0 across piece boundaries), within the
 * documented bound for sums — on both engines, including a JIT failure inside the pieces.
 * Two threads are forced with rt_par_set_threads, so the split is tested on any machine.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "ref.h"
#include "runtime/rt.h"

static const char *test_default_backend; /* restored after each test that changes it */

/* Lengths around the split threshold and the piece boundaries of program p. */
static size_t test_lengths(const canon_program *p, uint64_t *len) {
    const uint64_t t = rt_par_min_n(p), a = RT_PAR_ALIGN;
    const uint64_t v[] = {t - 1, t, t + 1, t + a - 1, t + a + 1, 2 * t + 3 * a + 17,
                          1000003};
    memcpy(len, v, sizeof v);
    return sizeof v / sizeof *v;
}

/* n floats, 64-byte aligned, uniform in [lo, hi). */
static float *test_random(uint64_t n, double lo, double hi, uint64_t *seed) {
    float *v = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!v)
        fail_msg("host allocation of %llu floats failed", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * ref_uniform(seed));
    return v;
}

/* Runs op on args with `threads` threads; fails the test unless it returns HG_OK. */
static float test_run(canon_op op, canon_args *args, int threads) {
    float r = 0.0f;
    rt_par_set_threads(threads);
    hg_status st = rt_run_op(op, args, -1, &r);
    rt_par_set_threads(0);
    if (st != HG_OK)
        fail_msg("%s, n = %llu, %d threads: %s (%s)", canon_op_get(op)->name,
                 (unsigned long long)args->n, threads, hg_status_string(st), hg_last_error());
    return r;
}

/* ---- how the range is cut ------------------------------------------------------------ */

typedef struct {
    const float *base;
    uint64_t lo[RT_PAR_MAX_THREADS], n[RT_PAR_MAX_THREADS];
    atomic_int pieces;
} test_cut;

/* rt_piece_fn that records where each piece starts (slot 0 - base) and its length. */
static hg_status test_record(void *ctx, const canon_program *p, const canon_args *args,
                             float *result, char *err, size_t err_cap) {
    test_cut *c = ctx;
    (void)p;
    (void)err;
    (void)err_cap;
    *result = 1.0f;
    int i = atomic_fetch_add(&c->pieces, 1);
    if (i < RT_PAR_MAX_THREADS) {
        c->lo[i] = (uint64_t)(args->slot[0] - c->base);
        c->n[i] = args->n;
    }
    return HG_OK;
}

/* rt_piece_fn that fails with a message. */
static hg_status test_fail(void *ctx, const canon_program *p, const canon_args *args,
                           float *result, char *err, size_t err_cap) {
    (void)ctx;
    (void)p;
    (void)result;
    snprintf(err, err_cap, "piece of %llu failed", (unsigned long long)args->n);
    return HG_ERR_COMPILE;
}

/* Chunks are aligned, cover [0, n) exactly once, are cut by n alone (the same for 1 to 5
 * threads); short and overlapping programs are not split, a loss is split stage by stage;
 * failures come back to the caller. */
static void test_cutting(void **state) {
    (void)state;
    const canon_program *add = canon_form(CANON_OP_vector_add_f32);
    const canon_program *copy = canon_form(CANON_OP_buffer_copy);
    const canon_program *loss = canon_form(CANON_OP_mse_loss_f32);
    assert_non_null(add);
    assert_non_null(copy);
    assert_non_null(loss);
    const uint64_t most = 1000003; /* the longest of test_lengths */
    float *base = calloc(3 * most, sizeof *base); /* never touched: pointers into it only */
    assert_non_null(base);
    hg_status st;
    char err[64];
    float r;
    for (int threads = 1; threads <= 5; threads++) {
        rt_par_set_threads(threads);
        assert_int_equal(rt_par_threads(), threads);
        uint64_t len[16];
        size_t count = test_lengths(add, len);
        for (size_t k = 0; k < count; k++) {
            assert_true(len[k] <= most);
            canon_args args = {.slot = {base, base + len[k], base + 2 * len[k]}, .n = len[k]};
            test_cut c = {.base = base};
            int split = rt_par_try(add, &args, test_record, &c, &r, &st, err, sizeof err);
            assert_int_equal(split, len[k] >= rt_par_min_n(add));
            if (!split)
                continue;
            assert_int_equal(st, HG_OK);
            const uint64_t chunk = rt_par_chunk(len[k]);
            assert_int_equal(chunk % RT_PAR_ALIGN, 0);
            assert_int_equal(c.pieces, (len[k] + chunk - 1) / chunk);
            assert_true(c.pieces >= 2 && c.pieces <= (int)RT_PAR_CHUNKS);
            uint64_t covered = 0;
            for (int i = 0; i < c.pieces; i++) { /* chunks may have run in any order */
                int j = 0;
                while (j < c.pieces && c.lo[j] != covered)
                    j++;
                assert_true(j < c.pieces);
                assert_true(c.n[j] == chunk || covered + c.n[j] == len[k]);
                covered += c.n[j];
            }
            assert_int_equal(covered, len[k]);
        }
    }
    uint64_t n = rt_par_min_n(copy) * 4;
    canon_args overlap = {.slot = {base, base + 100}, .n = n};
    test_cut c = {.base = base};
    assert_int_equal(rt_par_try(copy, &overlap, test_record, &c, &r, &st, err, sizeof err), 0);
    canon_args same = {.slot = {base, base}, .n = n};
    assert_int_equal(rt_par_try(copy, &same, test_record, &c, &r, &st, err, sizeof err), 1);
    canon_args two = {.slot = {base, base + n, base + 2 * n}, .n = n};
    test_cut staged = {.base = base}; /* a loss: its RANGE stage in chunks, then its SCALAR */
    assert_int_equal(rt_par_try(loss, &two, test_record, &staged, &r, &st, err, sizeof err), 1);
    assert_int_equal(st, HG_OK);
    assert_int_equal(staged.pieces, (n + rt_par_chunk(n) - 1) / rt_par_chunk(n) + 1);
    two.n = rt_par_min_n(loss) - 1;
    assert_int_equal(rt_par_try(loss, &two, test_record, &staged, &r, &st, err, sizeof err), 0);
    canon_args bin = {.slot = {base, base + n, base + 2 * n}, .n = n};
    rt_par_set_threads(2);
    assert_int_equal(rt_par_try(add, &bin, test_fail, NULL, &r, &st, err, sizeof err), 1);
    assert_int_equal(st, HG_ERR_COMPILE);
    assert_non_null(strstr(err, "failed"));
    rt_par_set_threads(RT_PAR_MAX_THREADS + 7);
    assert_int_equal(rt_par_threads(), RT_PAR_MAX_THREADS);
    rt_par_set_threads(0);
    assert_true(rt_par_threads() >= 1);
    free(base);
}

/* ---- the pool ----------------------------------------------------------------------------- */

typedef struct {
    atomic_int runs[RT_PAR_CHUNKS * 4];
    atomic_long sum;
} test_job;

static void test_chunk(void *ctx, uint32_t c) {
    test_job *j = ctx;
    atomic_fetch_add(&j->runs[c], 1);
    atomic_fetch_add(&j->sum, (long)c + 1);
}

typedef struct {
    int threads, rounds;
    atomic_int *stop;
} test_caller;

/* rt_par_for from several threads at once (one holds the pool, the others run inline), with
 * every chunk run exactly once, while another thread changes the thread count. */
static void *test_caller_main(void *arg) {
    test_caller *t = arg;
    for (int r = 0; r < t->rounds; r++) {
        static test_job zero;
        test_job *j = malloc(sizeof *j);
        if (!j)
            return (void *)1;
        *j = zero;
        const uint32_t n = 1 + (uint32_t)(r % (int)(RT_PAR_CHUNKS * 4));
        rt_par_for(n, t->threads + r % 3, test_chunk, j);
        int bad = atomic_load(&j->sum) != (long)n * (n + 1) / 2;
        for (uint32_t c = 0; c < n; c++)
            bad |= atomic_load(&j->runs[c]) != 1;
        free(j);
        if (bad)
            return (void *)1;
    }
    return NULL;
}

static void *test_setter_main(void *arg) {
    atomic_int *stop = arg;
    for (int64_t i = 0; !atomic_load(stop); i++)
        REF_OK(hg_set_num_threads(1 + i % 4));
    return NULL;
}

static void test_pool(void **state) {
    (void)state;
    test_job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    rt_par_for(0, 4, test_chunk, j); /* nothing */
    assert_int_equal(atomic_load(&j->sum), 0);
    atomic_int stop = 0;
    pthread_t setter, callers[4];
    test_caller t = {.threads = 2, .rounds = 3000, .stop = &stop};
    assert_int_equal(pthread_create(&setter, NULL, test_setter_main, &stop), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&callers[i], NULL, test_caller_main, &t), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        assert_int_equal(pthread_join(callers[i], &bad), 0);
        assert_null(bad);
    }
    atomic_store(&stop, 1);
    assert_int_equal(pthread_join(setter, NULL), 0);
    rt_par_set_threads(0);
    free(j);
}

/* hg_set_num_threads / hg_get_num_threads: values outside 1..RT_PAR_MAX_THREADS refused,
 * named, and the setting kept. */
static void test_thread_count(void **state) {
    (void)state;
    REF_OK(hg_set_num_threads(3));
    uint64_t t = 0;
    REF_OK(hg_get_num_threads(&t));
    assert_int_equal(t, 3);
    const int64_t bad[] = {0, -1, RT_PAR_MAX_THREADS + 1, INT64_MAX, INT64_MIN};
    char want[64];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(hg_set_num_threads(bad[i]), HG_ERR_INVALID_ARGUMENT);
        snprintf(want, sizeof want, "threads = %lld ", (long long)bad[i]);
        assert_non_null(strstr(hg_last_error(), want));
        REF_OK(hg_get_num_threads(&t));
        assert_int_equal(t, 3);
    }
    assert_int_equal(hg_get_num_threads(NULL), HG_ERR_INVALID_ARGUMENT);
    REF_OK(hg_set_num_threads(RT_PAR_MAX_THREADS));
    REF_OK(hg_get_num_threads(&t));
    assert_int_equal(t, RT_PAR_MAX_THREADS);
    rt_par_set_threads(0);
    const int d = rt_par_default_threads();
    assert_true(d >= 1 && d <= RT_PAR_MAX_THREADS);
}

/* ---- maps: bit for bit ------------------------------------------------------------------ */

/* Every MAP op of ops.def at lengths around its threshold: two threads give one thread's
 * bits, out of place and in place (output = first input), on the current backend. */
static void test_maps_backend(const char *backend) {
    if (hg_set_backend(backend) != HG_OK)
        skip(); /* a build without the JIT */
    uint64_t seed = 42;
    for (int op = 0; op < CANON_OP_COUNT; op++) {
        const canon_op_info *info = canon_op_get((canon_op)op);
        const canon_program *p = canon_form((canon_op)op);
        assert_non_null(p);
        if (info->family != CANON_FAM_MAP)
            continue;
        uint64_t len[16];
        size_t count = test_lengths(p, len);
        for (size_t k = 0; k < count; k++) {
            const uint64_t n = len[k];
            float *in[2] = {test_random(n, -4.0, 4.0, &seed), test_random(n, -4.0, 4.0, &seed)};
            float *one = test_random(n, 0.0, 1.0, &seed), *two = test_random(n, 0.0, 1.0, &seed);
            float *keep = test_random(n, 0.0, 1.0, &seed);
            memcpy(keep, in[0], n * sizeof *keep);
            for (int inplace = 0; inplace < 2 && (inplace == 0 || info->n_in > 0); inplace++) {
                canon_args args = {.param = {-0.5f, 0.75f}, .n = n};
                for (unsigned s = 0; s < info->n_in; s++)
                    args.slot[s] = in[s];
                args.slot[info->n_in] = inplace ? in[0] : one;
                test_run((canon_op)op, &args, 1);
                if (inplace) { /* the second run starts from the same input */
                    memcpy(one, in[0], n * sizeof *one);
                    memcpy(in[0], keep, n * sizeof *keep);
                }
                args.slot[info->n_in] = inplace ? in[0] : two;
                test_run((canon_op)op, &args, 2);
                const float *got = inplace ? in[0] : two;
                for (uint64_t i = 0; i < n; i++)
                    if (!ref_same(got[i], one[i]))
                        fail_msg("%s (%s, %s), n = %llu: element %llu is %a with 2 threads, "
                                 "%a with 1", info->name, backend,
                                 inplace ? "in place" : "out of place",
                                 (unsigned long long)n, (unsigned long long)i, (double)got[i],
                                 (double)one[i]);
                memcpy(in[0], keep, n * sizeof *keep);
            }
            free(in[0]);
            free(in[1]);
            free(one);
            free(two);
            free(keep);
        }
    }
    REF_OK(hg_set_backend(test_default_backend));
}

static void test_maps_jit(void **state) {
    (void)state;
    test_maps_backend("jit");
}

static void test_maps_interp(void **state) {
    (void)state;
    test_maps_backend("interp");
}

/* Add at one size against a plain double loop: the split result is also the right one. */
static void test_map_reference(void **state) {
    (void)state;
    uint64_t seed = 7;
    const uint64_t n = 3 * rt_par_min_n(canon_form(CANON_OP_vector_add_f32)) + 5;
    float *a = test_random(n, -1.0, 1.0, &seed), *b = test_random(n, -1.0, 1.0, &seed);
    float *c = test_random(n, 0.0, 1.0, &seed);
    canon_args args = {.slot = {a, b, c}, .n = n};
    test_run(CANON_OP_vector_add_f32, &args, 2);
    for (uint64_t i = 0; i < n; i++)
        if (!ref_same(c[i], (float)((double)a[i] + (double)b[i])))
            fail_msg("add, n = %llu: element %llu", (unsigned long long)n, (unsigned long long)i);
    free(a);
    free(b);
    free(c);
}

/* ---- reductions ------------------------------------------------------------------------ */

/* min/max exact (same bits as one thread and as a double loop), NaN in any one piece
 * propagates, and -0 beats +0 across pieces; sums within 1e-6*log2(n)*sum|x| of the double
 * sum on both engines, and the same bits for 1, 2 and 3 threads. */
static void test_reductions(void **state) {
    (void)state;
    static const char *const backends[] = {"jit", "interp"};
    uint64_t seed = 99;
    for (int be = 0; be < 2; be++) {
        if (hg_set_backend(backends[be]) != HG_OK)
            continue; /* a build without the JIT */
        const canon_program *sum = canon_form(CANON_OP_reduce_sum_f32);
        uint64_t len[16];
        size_t count = test_lengths(sum, len);
        for (size_t k = 0; k < count; k++) {
            const uint64_t n = len[k];
            float *x = test_random(n, -2.0, 3.0, &seed);
            canon_args args = {.slot = {x}, .n = n};
            double ref = 0.0, mag = 0.0, lo = INFINITY, hi = -INFINITY;
            for (uint64_t i = 0; i < n; i++) {
                ref += x[i];
                mag += fabs(x[i]);
                lo = x[i] < lo ? x[i] : lo;
                hi = x[i] > hi ? x[i] : hi;
            }
            const double bound = 1e-6 * log2((double)n) * mag;
            float s1 = test_run(CANON_OP_reduce_sum_f32, &args, 1);
            float s2 = test_run(CANON_OP_reduce_sum_f32, &args, 2);
            if (fabs(s2 - ref) > bound || fabs(s1 - ref) > bound)
                fail_msg("sum (%s), n = %llu: %.9g (2 threads), %.9g (1), want %.9g +- %.3g",
                         backends[be], (unsigned long long)n, (double)s2, (double)s1, ref, bound);
            /* the cut is n's alone: the same bits on every thread count */
            assert_true(ref_bits(s1) == ref_bits(s2));
            assert_true(ref_bits(s1) == ref_bits(test_run(CANON_OP_reduce_sum_f32, &args, 3)));
            assert_true(ref_same(test_run(CANON_OP_reduce_min_f32, &args, 2), (float)lo));
            assert_true(ref_same(test_run(CANON_OP_reduce_max_f32, &args, 2), (float)hi));
            assert_true(ref_same(test_run(CANON_OP_reduce_min_f32, &args, 1), (float)lo));
            if (n >= rt_par_min_n(canon_form(CANON_OP_reduce_min_f32))) {
                const uint64_t at[] = {3, n / 2 + 1, n - 2};
                for (int j = 0; j < 3; j++) {
                    float save = x[at[j]];
                    x[at[j]] = NAN;
                    assert_true(isnan(test_run(CANON_OP_reduce_min_f32, &args, 2)));
                    assert_true(isnan(test_run(CANON_OP_reduce_max_f32, &args, 2)));
                    x[at[j]] = save;
                }
                for (uint64_t i = 0; i < n; i++) /* min: +0 in the first piece, -0 in the last */
                    x[i] = fabsf(x[i]) + 1.0f;
                x[5] = 0.0f;
                x[n - 3] = -0.0f;
                assert_true(ref_bits(test_run(CANON_OP_reduce_min_f32, &args, 2)) ==
                            ref_bits(-0.0f));
                for (uint64_t i = 0; i < n; i++) /* max: -0 in the first piece, +0 in the last */
                    x[i] = -x[i];
                x[5] = -0.0f;
                x[n - 3] = 0.0f;
                assert_true(ref_bits(test_run(CANON_OP_reduce_max_f32, &args, 2)) ==
                            ref_bits(0.0f));
            }
            free(x);
        }
    }
    REF_OK(hg_set_backend(test_default_backend));
}

/* A JIT that fails inside the pieces: each piece falls back to the interpreter (counted),
 * and the result is still one thread's. */
static void test_piece_fallback(void **state) {
    (void)state;
    if (hg_set_backend("jit") != HG_OK)
        skip(); /* a build without the JIT */
    uint64_t seed = 5;
    const uint64_t n = 2 * rt_par_min_n(canon_form(CANON_OP_tanh_f32)) + 333;
    float *x = test_random(n, -3.0, 3.0, &seed);
    float *y1 = test_random(n, 0.0, 1.0, &seed), *y2 = test_random(n, 0.0, 1.0, &seed);
    REF_OK(hg_set_backend("interp"));
    canon_args args = {.slot = {x, y1}, .n = n};
    test_run(CANON_OP_tanh_f32, &args, 1);
    REF_OK(hg_set_backend("jit"));
    REF_OK(hg_cache_reset());
    setenv("HOLOGRAM_JIT_FAIL", "1", 1);
    args.slot[1] = y2;
    test_run(CANON_OP_tanh_f32, &args, 2);
    unsetenv("HOLOGRAM_JIT_FAIL");
    hg_cache_stats stats;
    REF_OK(hg_cache_stats_get(&stats));
    assert_true(stats.fallbacks >= 2);
    assert_memory_equal(y1, y2, n * sizeof *y1);
    REF_OK(hg_set_backend(test_default_backend));
    free(x);
    free(y1);
    free(y2);
}

/* ---- streamed stores -------------------------------------------------------------------- */

/* Maps past rt_par_stream_bytes() stream (canon_args.stream) unless in place, and give the
 * interpreter's bits on 1 and 2 threads, with an aligned and a misaligned output. */
static void test_streams(void **state) {
    (void)state;
    const uint64_t n = rt_par_stream_bytes() / sizeof(float) + 1037;
    uint64_t seed = 21;
    float *a = test_random(n, -3.0, 3.0, &seed), *b = test_random(n, -3.0, 3.0, &seed);
    float *want = test_random(n + 16, 0.0, 1.0, &seed), *got = test_random(n + 16, 0.0, 1.0, &seed);
    const canon_op ops[] = {CANON_OP_vector_add_f32, CANON_OP_sigmoid_f32, CANON_OP_vector_div_f32};
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        const canon_op_info *info = canon_op_get(ops[o]);
        const canon_program *p = canon_form(ops[o]);
        for (unsigned shift = 0; shift < 2; shift++) {
            canon_args args = {.slot = {a, b}, .n = n};
            args.slot[info->n_in] = want + shift;
            assert_int_equal(rt_par_stream(p, &args), 1);
            REF_OK(hg_set_backend("interp"));
            test_run(ops[o], &args, 1);
            if (hg_set_backend("jit") != HG_OK)
                continue; /* a build without the JIT */
            for (int threads = 1; threads <= 2; threads++) {
                memset(got, 0, (n + 16) * sizeof *got);
                args.slot[info->n_in] = got + shift;
                test_run(ops[o], &args, threads);
                if (memcmp(got + shift, want + shift, n * sizeof *got) != 0)
                    fail_msg("%s, n = %llu streamed (output +%u floats, %d threads): not the "
                             "interpreter's bits", info->name, (unsigned long long)n, shift,
                             threads);
            }
        }
        canon_args inplace = {.slot = {a, b}, .n = n};
        inplace.slot[info->n_in] = a;
        assert_int_equal(rt_par_stream(p, &inplace), 0);
        canon_args small = {.slot = {a, b, got}, .n = n / 4};
        small.slot[info->n_in] = got;
        assert_int_equal(rt_par_stream(p, &small), 0);
    }
    assert_int_equal(rt_par_stream(canon_form(CANON_OP_reduce_sum_f32),
                                   &(canon_args){.slot = {a, got}, .n = n}), 0);
    REF_OK(hg_set_backend(test_default_backend));
    free(a);
    free(b);
    free(want);
    free(got);
}

/* ---- contractions ------------------------------------------------------------------------ */

typedef struct {
    const float *c_base;
    uint64_t n, rows[RT_PAR_CHUNKS], at[RT_PAR_CHUNKS];
    atomic_int pieces;
} test_rows;

/* rt_piece_fn recording the rows of C each piece covers. */
static hg_status test_record_rows(void *ctx, const canon_program *p, const canon_args *args,
                                  float *result, char *err, size_t err_cap) {
    test_rows *t = ctx;
    (void)p;
    (void)result;
    (void)err;
    (void)err_cap;
    int i = atomic_fetch_add(&t->pieces, 1);
    if (i < (int)RT_PAR_CHUNKS) {
        t->at[i] = (uint64_t)(args->slot[2] - t->c_base) / t->n;
        t->rows[i] = args->contract.m;
    }
    return HG_OK;
}

/* gemm blocked over rows (one row: over columns): the blocks cover C's rows once, in
 * multiples of RT_PAR_ROWS (but the last); small contractions and one thread are not
 * split; results on 1 and 3
 * threads, both engines, within k * 2^-22 * sum|a||b| of a double loop, for one-row
 * (row-major and column-major B), one-column and ragged shapes. */
static void test_contract(void **state) {
    (void)state;
    const canon_program *gemm = canon_form(CANON_OP_gemm_f32);
    assert_non_null(gemm);
    static const uint64_t shapes[][3] = {{300, 257, 129}, {1000, 64, 64}, {33, 512, 512},
                                         {4096, 1, 1024}, {1, 1024, 1024}, {1, 3000, 2000},
                                         {3, 1000, 777}, {4, 33, 4100}, {7, 700, 300},
                                         {20, 20, 20}};
    static const char *const backends[] = {"jit", "interp"};
    uint64_t seed = 11;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const uint64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = test_random(m * k, -1.0, 1.0, &seed), *b = test_random(k * n, -1.0, 1.0, &seed);
        float *bt = test_random(k * n, 0.0, 1.0, &seed), *c = test_random(m * n, 0.0, 1.0, &seed);
        for (uint64_t p = 0; p < k; p++) /* bt: B column-major */
            for (uint64_t j = 0; j < n; j++)
                bt[j * k + p] = b[p * n + j];
        for (int colmajor = 0; colmajor < 2; colmajor++) {
            canon_args args = {.slot = {a, colmajor ? bt : b, c}};
            args.contract = (canon_contract_shape){m, n, k, (int64_t)k, 1,
                                                   colmajor ? 1 : (int64_t)n,
                                                   colmajor ? (int64_t)k : 1};
            /* the cut */
            rt_par_set_threads(3);
            test_rows t = {.c_base = c, .n = n};
            hg_status st;
            char err[64];
            const int split = rt_par_contract(gemm, &args, test_record_rows, &t, &st, err,
                                              sizeof err);
            assert_int_equal(split, m * n * k >= 2 * RT_PAR_CONTRACT_MIN &&
                                        (m >= 2 * RT_PAR_ROWS || m == 1));
            if (split && m == 1) { /* one row: blocks of columns */
                assert_true(t.pieces >= 2);
                for (int i = 0; i < t.pieces; i++)
                    assert_int_equal(t.rows[i], 1);
            } else if (split) {
                uint64_t covered = 0;
                for (int i = 0; i < t.pieces; i++) {
                    int j = 0;
                    while (j < t.pieces && t.at[j] != covered)
                        j++;
                    assert_true(j < t.pieces);
                    assert_true(t.rows[j] % RT_PAR_ROWS == 0 || covered + t.rows[j] == m);
                    covered += t.rows[j];
                }
                assert_int_equal(covered, m);
            }
            rt_par_set_threads(1);
            assert_int_equal(rt_par_contract(gemm, &args, test_record_rows, &t, &st, err,
                                             sizeof err), 0);
            /* the results */
            for (int be = 0; be < 2; be++) {
                if (hg_set_backend(backends[be]) != HG_OK)
                    continue; /* a build without the JIT */
                for (int threads = 1; threads <= 3; threads += 2) {
                    memset(c, 0xff, m * n * sizeof *c); /* NaN: every element must be written */
                    test_run(CANON_OP_gemm_f32, &args, threads);
                    for (uint64_t i = 0; i < m; i++)
                        for (uint64_t j = 0; j < n; j++) {
                            double ref = 0.0, mag = 0.0;
                            for (uint64_t p = 0; p < k; p++) {
                                ref += (double)a[i * k + p] * b[p * n + j];
                                mag += fabs((double)a[i * k + p] * b[p * n + j]);
                            }
                            if (!(fabs(c[i * n + j] - ref) <= (double)k * 0x1p-22 * mag + 1e-30))
                                fail_msg("gemm %llux%llux%llu (%s B, %s, %d threads): C[%llu, "
                                         "%llu] = %.9g, want %.9g", (unsigned long long)m,
                                         (unsigned long long)n, (unsigned long long)k,
                                         colmajor ? "column-major" : "row-major",
                                         backends[be], threads, (unsigned long long)i,
                                         (unsigned long long)j, (double)c[i * n + j], ref);
                        }
                }
            }
        }
        free(a);
        free(b);
        free(bt);
        free(c);
    }
    rt_par_set_threads(0);
    REF_OK(hg_set_backend(test_default_backend));
}

int main(void) {
    if (hg_get_backend(&test_default_backend) != HG_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cutting),        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_thread_count),   cmocka_unit_test(test_maps_jit),
        cmocka_unit_test(test_maps_interp),    cmocka_unit_test(test_map_reference),
        cmocka_unit_test(test_reductions),     cmocka_unit_test(test_piece_fallback),
        cmocka_unit_test(test_streams),        cmocka_unit_test(test_contract),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
