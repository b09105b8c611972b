/*
 * tests/test_alloc.c — allocation failure, as SQLite's malloc tests run it.
 *
 * A representative sequence of API calls (executors, linear and boundary buffers, JSON in
 * and out, ops, reductions, tensors and their views, copies, matmul, expressions from text
 * and from JSON documents through cJSON, their documents, cleanup) is run with the N-th
 * allocation inside the library made to fail (canon_alloc_fail_at, canon/alloc.h), for
 * N = 1, 2, ... until the sequence runs without reaching an N-th allocation.  At every N:
 * each call returns HG_OK or HG_ERR_NO_MEMORY with a message (the sequence stops at the
 * first failure); after the cleanup no block is left (the allocator's count of live blocks,
 * and LeakSanitizer at exit); and the whole sequence then succeeds with the right values.
 * Run on the interpreter and, in a JIT build, on the JIT with its kernel cache emptied at
 * every N: kernels loaded from the disk cache, and (a child with HOLOGRAM_CACHE_DIR=off)
 * compiled every time, so the cache's, the disk reader's and the lowering's allocations are
 * reached too.  Prints how many distinct allocation sites the failures struck
 * (HG_ALLOC_SITES=1: which).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANON_ALLOC_PLAIN /* this file's own allocations are not the library's */
#include "canon/alloc.h"
#include "ref.h"
#include "runtime/rt.h"

/* The step that ran out of memory last, for messages. */
static const char *g_step = "";

/* One step of the sequence: its status must be HG_OK or HG_ERR_NO_MEMORY (with a
 * message); a failure ends the sequence. */
#define STEP(call)                                                                           \
    do {                                                                                     \
        hg_status st_ = (call);                                                              \
        if (st_ != HG_OK) {                                                                  \
            g_step = #call;                                                                  \
            if (st_ != HG_ERR_NO_MEMORY || !hg_last_error()[0])                              \
                fail_msg("%s gave %s (\"%s\")", #call, hg_status_string(st_),                \
                         hg_last_error());                                                   \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

/* Frees a string the library returned (NULL harmless). */
static void drop(char **s) {
    hg_free_string(*s);
    *s = NULL;
}

/* The sequence; returns 1 when every step succeeded (values checked then), else 0 (a
 * step ran out of memory).  Everything it made is freed either way. */
static int sequence(void) {
    uint64_t e = 0, a = 0, b = 0, c = 0, bnd = 0, t = 0, tt = 0, tc = 0, tv = 0, tm = 0;
    uint64_t ts = 0, tb = 0, x = 0, y = 0, tn = 0, tr = 0, tsm = 0, bn = 0;
    char *text = NULL;
    float sum = 0, v[16], r, host[16], hout[16];
    int ok = 0;
    STEP(hg_new_executor(&e));
    STEP(hg_executor_allocate_buffer(e, 16, &a));
    STEP(hg_executor_allocate_buffer(e, 16, &b));
    STEP(hg_executor_allocate_buffer(e, 16, &c));
    STEP(hg_executor_allocate_boundary_buffer(e, 3, 8, 8, &bnd));
    STEP(hg_buffer_copy_from_slice(e, a, "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]"));
    STEP(hg_buffer_fill(e, b, 2.0f, 16));
    STEP(hg_vector_mul_f32(e, a, b, c, 16));
    STEP(hg_reduce_sum_f32(e, c, b, 16, &sum));
    STEP(hg_buffer_to_vec(e, c, &text));
    drop(&text);
    STEP(hg_tensor_from_buffer(a, "[4, 4]", &t));
    STEP(hg_tensor_shape(t, &text));
    drop(&text);
    STEP(hg_tensor_transpose(t, &tt));
    STEP(hg_tensor_contiguous(e, tt, &tc));
    STEP(hg_tensor_slice(t, 1, 0, -1, 2, &ts));
    STEP(hg_tensor_broadcast_to(ts, "[3, 4, 2]", &tb));
    STEP(hg_tensor_reshape(e, tt, "[2, 8]", &tv)); /* not contiguous: a copy */
    STEP(hg_tensor_matmul(e, t, tt, &tm));
    STEP(hg_expr_compile("a * b + s", "[\"s\"]", &x));
    STEP(hg_expr_run(e, x, (const uint64_t[]){a, b}, 2, (const float[]){1.0f}, 1, c, 16, &r));
    STEP(hg_expr_describe(x, &text));
    STEP(hg_expr_compile(text, NULL, &y)); /* the document back, through cJSON */
    drop(&text);
    STEP(hg_expr_variables(y, &text));
    drop(&text);
    /* N-d compute: an expression on a tensor and its transpose, an axis reduction, softmax
     * by op name, an op's document, an expression on host arrays with broadcasting */
    STEP(hg_tensor_evaluate(e, x, (const uint64_t[]){t, tt}, 2, (const float[]){1.0f}, 1, &tn));
    STEP(hg_tensor_reduce(e, t, "mean", "[1]", 1, &tr));
    STEP(hg_tensor_apply(e, "softmax_f32", &tt, 1, NULL, 0, NULL, 0, &tsm));
    STEP(hg_op_describe("softmax_f32", &text));
    drop(&text);
    for (int i = 0; i < 16; i++)
        host[i] = (float)i;
    const hg_array ha = {.data = host, .ndim = 2, .shape = {4, 4}, .strides = {4, 1}};
    const hg_array hb = {.data = host, .ndim = 1, .shape = {4}, .strides = {1}};
    const hg_array ho = {.data = hout, .ndim = 2, .shape = {4, 4}, .strides = {1, 4}};
    STEP(hg_expr_run_arrays(x, (const hg_array[]){ha, hb}, 2, (const float[]){0.5f}, 1, &ho));
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            assert_true(hout[j * 4 + i] == host[i * 4 + j] * host[j] + 0.5f);
    STEP(hg_tensor_buffer(tn, &bn));
    STEP(hg_buffer_read(e, bn, v, 16));
    for (int i = 0; i < 16; i++) /* a[i][j] * a[j][i] + 1 */
        assert_true(v[i] == (float)i * (float)((i % 4) * 4 + i / 4) + 1.0f);
    STEP(hg_buffer_read(e, c, v, 16));
    for (int i = 0; i < 16; i++)
        assert_true(v[i] == 2.0f * (float)i + 1.0f);
    assert_true(sum == 240.0f);
    STEP(hg_tensor_cleanup(tb));
    STEP(hg_buffer_cleanup(bnd));
    ok = 1;
done:
    drop(&text);
    if (x)
        assert_int_equal(hg_expr_cleanup(x), HG_OK);
    if (y)
        assert_int_equal(hg_expr_cleanup(y), HG_OK);
    if (e)
        assert_int_equal(hg_executor_cleanup(e), HG_OK);
    return ok;
}

/* Blocks alive on this thread, without those the library keeps for reuse: the buffer
 * memory cache and (`fresh`) the kernel cache. */
static int64_t live_blocks(int fresh) {
    rt_mem_trim();
    if (fresh)
        assert_int_equal(hg_cache_reset(), HG_OK);
    canon_alloc_stats s;
    canon_alloc_stats_get(&s);
    return s.live;
}

/* Distinct sites struck, for the report. */
static const char *g_sites[512];
static int g_n_sites;

static void note_site(const char *site) {
    for (int i = 0; i < g_n_sites; i++)
        if (strcmp(g_sites[i], site) == 0)
            return;
    if (g_n_sites < 512)
        g_sites[g_n_sites++] = site;
}

/* The sweep on `backend`; `fresh` empties the kernel cache before each N, so that every
 * run misses and loads its kernels from the disk cache (HOLOGRAM_CACHE_DIR). */
static void sweep(const char *backend, int fresh) {
    /* one-time allocations happen here: this thread's lock record and interpreter scratch
     * (the JIT falls back to the interpreter when it runs out of memory), the op forms */
    assert_int_equal(hg_set_backend("interp"), HG_OK);
    assert_true(sequence());
    assert_int_equal(hg_set_backend(backend), HG_OK);
    assert_true(sequence());
    hg_cache_stats cs;
    assert_int_equal(hg_cache_stats_get(&cs), HG_OK); /* and the kernel cache's table */
    const int64_t base = live_blocks(fresh);
    int sites_before = g_n_sites;
    uint64_t n, compiles = 0, disk_loads = 0;
    for (n = 1;; n++) { /* (live_blocks emptied the kernel cache) */
        canon_alloc_fail_at(n);
        g_step = "(no step failed)";
        int ok = sequence();
        canon_alloc_stats s;
        canon_alloc_stats_get(&s);
        canon_alloc_fail_at(0);
        assert_int_equal(hg_cache_stats_get(&cs), HG_OK);
        compiles += cs.compiles;
        disk_loads += cs.disk_loads;
        if (s.failed_site)
            note_site(s.failed_site);
        if (live_blocks(fresh) != base)
            fail_msg("%s: failing allocation %llu (%s, in %s) leaked %lld blocks", backend,
                     (unsigned long long)n, s.failed_site ? s.failed_site : "none", g_step,
                     (long long)(live_blocks(fresh) - base));
        if (!s.failed_site) { /* the sequence made fewer than n allocations: done */
            assert_true(ok);
            break;
        }
        if (!sequence()) /* still usable */
            fail_msg("%s: after failing allocation %llu (%s) the sequence fails", backend,
                     (unsigned long long)n, s.failed_site);
        assert_int_equal(live_blocks(fresh), base);
    }
    print_message("%s: %llu runs, every allocation failed once; %d distinct sites struck "
                  "(kernels: %llu compiled, %llu loaded from disk)\n",
                  backend, (unsigned long long)n, g_n_sites - sites_before,
                  (unsigned long long)compiles, (unsigned long long)disk_loads);
}

static void test_interp(void **state) {
    (void)state;
    sweep("interp", 0);
}

static void print_sites(const char *what) {
    print_message("%s: %d distinct allocation sites struck\n", what, g_n_sites);
    if (getenv("HG_ALLOC_SITES"))
        for (int i = 0; i < g_n_sites; i++)
            print_message("  %s\n", g_sites[i]);
}

static void test_jit(void **state) {
    (void)state;
    if (hg_set_backend("jit") != HG_OK)
        skip(); /* a build without the JIT */
    sweep("jit", 1);
    print_sites("this process (interpreter, JIT from disk)");
}

/* The JIT sweep with no disk cache, in a child ("compile" mode): every run compiles. */
static void test_jit_compiling(void **state) {
    (void)state;
    if (hg_set_backend("jit") != HG_OK)
        skip();
    char out[8192];
    char *argv[] = {"test_alloc", "compile", NULL};
    const char *env[] = {"HOLOGRAM_CACHE_DIR=off", NULL};
    ref_run_self(argv, env, out, sizeof out);
    const char *line = strstr(out, "jit:");
    print_message("compiling child: %.*s", line ? (int)strcspn(line, "\n") + 1 : 0,
                  line ? line : "");
}

static void test_compile_mode(void **state) {
    (void)state;
    sweep("jit", 1);
    print_sites("compiling");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "compile") == 0) {
        const struct CMUnitTest child[] = {cmocka_unit_test(test_compile_mode)};
        return cmocka_run_group_tests(child, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interp),
        cmocka_unit_test(test_jit),
        cmocka_unit_test(test_jit_compiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
