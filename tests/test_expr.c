/*
 * tests/test_expr.c — expressions end to end: the language (precedence, literals, CSE,
 * every error with its column, the limits, inputs that would recurse or grow without
 * bound), the identity of forms (expressions share the built-in ops' kernels; forms forced
 * to share a hash stay correct from memory and from disk; a stored object of another form
 * is rejected and recompiled), the C API (hg_expr_*: counts, lengths, aliasing, stale
 * handles, nothing written on error, JSON documents), and both engines on every
 * primitive of prims.def (maps bit-identical, reductions within the sum bound).
 *
 * Child processes (the disk-cache identity tests) are this binary re-run with a mode
 * argument and their own environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon/canon.h"
#include "canon/scalar.h"
#include "ref.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* Parses text with the given scalars; fails the test on an error. */
static canon_expr *parse(const char *text, const char *const *scalars, uint32_t n) {
    canon_expr *e;
    canon_expr_error err;
    if (canon_expr_parse(text, scalars, n, &e, &err) != 0)
        fail_msg("parse \"%s\": %s", text, err.msg);
    assert_int_equal(canon_check(e->form, 0, NULL, NULL, 0), 0);
    return e;
}

/* Expects text to fail with a message containing `want` at `column` (0: any). */
static void parse_fails(const char *text, const char *const *scalars, uint32_t n,
                        const char *want, uint32_t column) {
    canon_expr *e = NULL;
    canon_expr_error err;
    if (canon_expr_parse(text, scalars, n, &e, &err) == 0) {
        canon_expr_free(e);
        fail_msg("\"%.60s\" parsed; expected an error with \"%s\"", text, want);
    }
    assert_null(e);
    if (!strstr(err.msg, want))
        fail_msg("\"%.60s\": message \"%s\" lacks \"%s\"", text, err.msg, want);
    if (column && err.column != column)
        fail_msg("\"%.60s\": column %u, expected %u (%s)", text, err.column, column, err.msg);
}

/* 1 when the normal forms of texts x and y are the same kernel. */
static int same_kernel(const char *x, const char *y, const char *const *scalars, uint32_t n) {
    canon_expr *a = parse(x, scalars, n), *b = parse(y, scalars, n);
    int same = canon_same_form(a->form, b->form);
    canon_expr_free(a);
    canon_expr_free(b);
    return same;
}

static uint64_t compile(const char *text, const char *scalars_json) {
    uint64_t h = 0;
    REF_OK(hg_expr_compile(text, scalars_json, &h));
    return h;
}

/* ---- the language ---------------------------------------------------------------------- */

/* Python's precedence and associativity, checked as identities of normal forms. */
static void test_precedence(void **state) {
    (void)state;
    assert_true(same_kernel("a + b * c", "a + (b * c)", NULL, 0));
    assert_false(same_kernel("a + b * c", "(a + b) * c", NULL, 0));
    assert_true(same_kernel("a - b - c", "(a - b) - c", NULL, 0));
    assert_false(same_kernel("a - b - c", "a - (b - c)", NULL, 0));
    assert_true(same_kernel("a / b / c", "(a / b) / c", NULL, 0));
    assert_true(same_kernel("-a ** 2", "-(a * a)", NULL, 0));
    assert_true(same_kernel("a ** b ** c", "a ** (b ** c)", NULL, 0));
    assert_false(same_kernel("a ** b ** c", "(a ** b) ** c", NULL, 0));
    assert_true(same_kernel("a < b | c", "a < (b | c)", NULL, 0)); /* | binds tighter */
    assert_true(same_kernel("a | b & c", "a | (b & c)", NULL, 0));
    assert_true(same_kernel("a & b + c", "a & (b + c)", NULL, 0));
    assert_true(same_kernel("~a * b", "(~a) * b", NULL, 0));
    assert_true(same_kernel("+a", "a", NULL, 0));
    assert_true(same_kernel("--a", "a", NULL, 0));
    /* a > b is LT(b, a): the root compares slot 1 with slot 0 */
    static const struct {
        const char *text;
        canon_kind kind;
    } swapped[] = {{"a > b", CANON_LT}, {"a >= b", CANON_LE}};
    for (int i = 0; i < 2; i++) {
        canon_expr *e = parse(swapped[i].text, NULL, 0);
        const canon_node *r = &e->form->nodes[e->form->stages[0].root];
        assert_int_equal(r->kind, swapped[i].kind);
        assert_int_equal(e->form->nodes[r->op[0]].arg, 1);
        assert_int_equal(e->form->nodes[r->op[1]].arg, 0);
        canon_expr_free(e);
    }
    assert_true(same_kernel("a == b", "b == a", NULL, 0));
    assert_true(same_kernel(" \t\na\r\n+ b ", "a+b", NULL, 0));
    /* ** folds and rewrites: x**2 is x*x, x**0.5 sqrt, x**1 x, x**-1 1/x, x**0 1 */
    assert_true(same_kernel("a ** 2", "a * a", NULL, 0));
    assert_true(same_kernel("a ** 0.5", "sqrt(a)", NULL, 0));
    assert_true(same_kernel("a ** 1 + b", "a + b", NULL, 0));
    assert_true(same_kernel("a ** -1", "1 / a", NULL, 0));
    assert_true(same_kernel("2 ** -1 * a", "0.5 * a", NULL, 0));
    canon_expr *one = parse("a ** 0", NULL, 0);
    assert_int_equal(one->form->nodes[one->form->stages[0].root].kind, CANON_CONST);
    assert_true(one->form->nodes[one->form->stages[0].root].value == 1.0f);
    canon_expr_free(one);
    assert_false(same_kernel("a ** 3", "a * a * a", NULL, 0)); /* pow, correctly rounded */
}

/* Every ops.def row with a public face is the expression spelled the obvious way: they
 * share one kernel. */
static void test_ops_share_kernels(void **state) {
    (void)state;
    static const struct {
        canon_op op;
        const char *text;
        const char *scalars[2];
    } rows[] = {
        {CANON_OP_vector_add_f32, "a + b", {0}},
        {CANON_OP_vector_add_f32, "b + a", {0}}, /* binding order: b is slot 0 */
        {CANON_OP_vector_sub_f32, "a - b", {0}},
        {CANON_OP_vector_mul_f32, "a * b", {0}},
        {CANON_OP_vector_div_f32, "a / b", {0}},
        {CANON_OP_vector_min_f32, "minimum(a, b)", {0}},
        {CANON_OP_vector_max_f32, "maximum(x, y)", {0}},
        {CANON_OP_vector_abs_f32, "abs(x)", {0}},
        {CANON_OP_vector_neg_f32, "-x", {0}},
        {CANON_OP_vector_relu_f32, "relu(x)", {0}},
        {CANON_OP_vector_relu_f32, "maximum(x, 0)", {0}},
        {CANON_OP_vector_clip_f32, "clip(x, lo, hi)", {"lo", "hi"}},
        {CANON_OP_scalar_add_f32, "x + s", {"s"}},
        {CANON_OP_scalar_mul_f32, "s * x", {"s"}},
        {CANON_OP_buffer_copy, "x", {0}},
        {CANON_OP_sigmoid_f32, "sigmoid(x)", {0}},
        {CANON_OP_sigmoid_f32, "1 / (1 + exp(-x))", {0}},
        {CANON_OP_tanh_f32, "tanh(x)", {0}},
        {CANON_OP_gelu_f32, "gelu(x)", {0}},
        {CANON_OP_reduce_sum_f32, "sum(x)", {0}},
        {CANON_OP_reduce_min_f32, "min(x)", {0}},
        {CANON_OP_reduce_max_f32, "max(x)", {0}},
        {CANON_OP_mse_loss_f32, "mean((p - t) ** 2)", {0}},
        {CANON_OP_mse_loss_f32, "mean((p - t) * (p - t))", {0}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint32_t n = (rows[i].scalars[0] != NULL) + (rows[i].scalars[1] != NULL);
        canon_expr *e = parse(rows[i].text, rows[i].scalars, n);
        if (!canon_same_form(e->form, canon_form(rows[i].op)))
            fail_msg("\"%s\" is not the form of %s", rows[i].text,
                     canon_op_get(rows[i].op)->name);
        canon_expr_free(e);
    }
    /* and at run time: the second spelling hits the first one's kernel */
    const char *b;
    if (hg_get_backend(&b) != HG_OK || strcmp(b, "jit") != 0)
        return;
    uint64_t exec, x, y, z;
    REF_OK(hg_new_executor(&exec));
    REF_OK(hg_executor_allocate_buffer(exec, 100, &x));
    REF_OK(hg_executor_allocate_buffer(exec, 100, &y));
    REF_OK(hg_executor_allocate_buffer(exec, 100, &z));
    REF_OK(hg_cache_reset());
    REF_OK(hg_vector_sub_f32(exec, x, y, z, 77));
    uint64_t e = compile("u + -v", NULL);
    const uint64_t in[2] = {x, y};
    REF_OK(hg_expr_run(exec, e, in, 2, NULL, 0, z, 77, NULL));
    hg_cache_stats st;
    REF_OK(hg_cache_stats_get(&st));
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 1);
    REF_OK(hg_expr_cleanup(e));
    REF_OK(hg_executor_cleanup(exec));
}

/* Literals are Python's, read as double and rounded once to float32. */
static void test_literals(void **state) {
    (void)state;
    static const struct {
        const char *text;
        double value;
    } lits[] = {{"1e3", 1e3},       {"1.5e-3", 1.5e-3}, {".5", .5},       {"5.", 5.},
                {"1E+2", 1e2},      {"0.1", 0.1},       {"007", 7},       {"3.4028235e38", 3.4028235e38},
                {"1e-50", 1e-50},   {"16777217", 16777217.0},             {"2.5e0", 2.5}};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        canon_expr *e = parse(lits[i].text, NULL, 0);
        const canon_node *root = &e->form->nodes[e->form->stages[0].root];
        assert_int_equal(root->kind, CANON_CONST);
        if (ref_bits(root->value) != ref_bits((float)lits[i].value))
            fail_msg("%s read as %a, not %a", lits[i].text, root->value, (float)lits[i].value);
        canon_expr_free(e);
    }
    parse_fails("1e39 * a", NULL, 0, "beyond the float32 range", 1);
    parse_fails("a + 2a", NULL, 0, "'2a' is not a number", 5);
    parse_fails("1_000", NULL, 0, "is not a number", 1);
    parse_fails("0x10", NULL, 0, "is not a number", 1);
    parse_fails("1.2.3", NULL, 0, "is not a number", 1);
}

/* A repeated subexpression is one node; node counts before and after are kept. */
static void test_cse_and_counts(void **state) {
    (void)state;
    canon_expr *e = parse("exp(a) + exp(a) * exp(a)", NULL, 0);
    unsigned exps = 0;
    for (uint32_t i = 0; i < e->form->n_nodes; i++)
        exps += e->form->nodes[i].kind == CANON_EXP;
    assert_int_equal(exps, 1);
    assert_int_equal(e->form->nodes_before, e->pre->n_nodes);
    canon_expr_free(e);
    e = parse("sigmoid(x)", NULL, 0); /* LOAD SIGMOID -> LOAD NEG EXP CONST ADD DIV */
    assert_int_equal(e->pre->n_nodes, 2);
    assert_int_equal(e->form->n_nodes, 6);
    assert_int_equal(e->form->nodes_before, 2);
    canon_expr_free(e);
    /* names bind in order of first appearance, arrays and scalars apart */
    const char *sc[] = {"w", "b"};
    e = parse("z * b + w * y + z", sc, 2);
    assert_int_equal(e->n_arrays, 2);
    assert_int_equal(e->n_scalars, 2);
    assert_string_equal(e->names[0], "z");
    assert_string_equal(e->names[1], "y");
    assert_string_equal(e->names[2], "b");
    assert_string_equal(e->names[3], "w");
    assert_true(e->has_output && !e->has_result);
    assert_string_equal(e->kind, "map");
    canon_expr_free(e);
    e = parse("mean(a)", NULL, 0);
    assert_true(!e->has_output && e->has_result);
    assert_string_equal(e->kind, "mean");
    canon_expr_free(e);
}

/* Every error names what is wrong and where. */
static void test_errors_name_the_column(void **state) {
    (void)state;
    const char *w[] = {"w"};
    parse_fails("", NULL, 0, "empty", 1);
    parse_fails("   ", NULL, 0, "empty", 4);
    parse_fails("a +", NULL, 0, "found the end of the expression", 4);
    parse_fails("a + * b", NULL, 0, "found '*'", 5);
    parse_fails("exp(a, b)", NULL, 0, "exp() takes 1 argument, got 2", 1);
    parse_fails("1 + where(a, b)", NULL, 0, "where() takes 3 arguments, got 2", 5);
    parse_fails("clip()", NULL, 0, "clip() takes 3 arguments, got 0", 1);
    parse_fails("a * foo(b)", NULL, 0, "unknown function 'foo'", 5);
    parse_fails("a < b < c", NULL, 0, "chained comparison", 7);
    parse_fails("sum(a) + 1", NULL, 0, "sum() must enclose the whole expression", 8);
    parse_fails("a + sum(b)", NULL, 0, "reduction sum() is inside an expression", 5);
    parse_fails("2 * mean(b)", NULL, 0, "reduction mean()", 5);
    parse_fails("sum(a, 0)", NULL, 0, "only axis=<integer>", 8);
    parse_fails("sum(a, axis=b)", NULL, 0, "axis", 13);
    parse_fails("a + sum(b, axis=1)", NULL, 0, "reduction sum() is inside an expression", 5);
    parse_fails("a * (b, axis=1)", NULL, 0, "", 0);
    parse_fails("sum + 1", NULL, 0, "'sum' is a reduction", 1);
    parse_fails("a + max", NULL, 0, "'max' is a reduction", 5);
    parse_fails("(a + b", NULL, 0, "expected ')' to close the '(' at column 1", 7);
    parse_fails("a + b)", NULL, 0, "')' without a matching '('", 6);
    parse_fails("exp(a", NULL, 0, "call of exp() at column 1", 6);
    parse_fails("a = b", NULL, 0, "compare with ==", 3);
    parse_fails("a ! b", NULL, 0, "unexpected character '!'", 3);
    parse_fails("a @ b", NULL, 0, "unexpected character '@'", 3);
    parse_fails("a \x01 b", NULL, 0, "unexpected byte 0x01", 3);
    parse_fails("a + \xc3\xa9", NULL, 0, "unexpected byte 0xc3", 5);
    parse_fails("a and b", NULL, 0, "'and' is not supported: use &", 3);
    parse_fails("not a", NULL, 0, "'not' is not supported", 1);
    parse_fails("exp + 1", NULL, 0, "'exp' is a function", 1);
    parse_fails("a b", NULL, 0, "expected an operator, found 'b'", 3);
    parse_fails("a + b", w, 1, "the scalar \"w\" does not appear", 0);
    const char *bad[] = {"exp"};
    parse_fails("a", bad, 1, "is reserved", 0);
    const char *twice[] = {"w", "w"};
    parse_fails("w", twice, 2, "repeats", 0);
}

/* Limits are stated, enforced with a message naming them, and never crash: deep
 * nesting, huge texts, long names, too many inputs, too many nodes. */
static void test_limits(void **state) {
    (void)state;
    static char t[CANON_EXPR_MAX_TEXT + 16];
    /* nesting: the limit itself parses, one more does not; 100000 levels are refused */
    int depth = CANON_EXPR_MAX_DEPTH;
    memset(t, '(', (size_t)depth);
    t[depth] = 'a';
    memset(t + depth + 1, ')', (size_t)depth);
    t[2 * depth + 1] = '\0';
    canon_expr_free(parse(t, NULL, 0));
    depth++;
    memset(t, '(', (size_t)depth);
    t[depth] = 'a';
    memset(t + depth + 1, ')', (size_t)depth);
    t[2 * depth + 1] = '\0';
    parse_fails(t, NULL, 0, "nesting deeper than 64 levels", (uint32_t)depth);
    static const char *const deep[] = {"(", "-", "~", "exp(", "a**"};
    for (size_t d = 0; d < sizeof deep / sizeof deep[0]; d++) {
        size_t len = strlen(deep[d]), at = 0;
        while (at + len < 100000 * len && at + len < CANON_EXPR_MAX_TEXT - 4) {
            memcpy(t + at, deep[d], len);
            at += len;
        }
        strcpy(t + at, "a");
        parse_fails(t, NULL, 0, "nesting deeper than", 0);
    }
    /* a long flat chain is fine up to the node limit (it is a loop, not recursion) */
    size_t at = 0;
    for (int i = 0; i < 1300; i++) /* 3 nodes a term */
        at += (size_t)sprintf(t + at, "%sa*%d", i ? "+" : "", i + 2);
    canon_expr *e = parse(t, NULL, 0);
    assert_true(e->form->n_nodes > 3800);
    canon_expr_free(e);
    at = 0;
    for (int i = 0; i < 1400; i++)
        at += (size_t)sprintf(t + at, "%sa*%d", i ? "+" : "", i + 2);
    parse_fails(t, NULL, 0, "more than 4096 nodes (the limit)", 0);
    /* text beyond 1 MiB */
    memset(t, ' ', CANON_EXPR_MAX_TEXT + 1);
    t[0] = 'a';
    t[CANON_EXPR_MAX_TEXT + 1] = '\0';
    parse_fails(t, NULL, 0, "longer than 1048576 bytes (the limit)", 0);
    /* a 65-byte name; 33 arrays; 33 scalars */
    memset(t, 'n', 65);
    t[65] = '\0';
    parse_fails(t, NULL, 0, "a name of 65 characters (at most 64)", 1);
    at = 0;
    for (int i = 0; i < 33; i++)
        at += (size_t)sprintf(t + at, "%sv%d", i ? "+" : "", i);
    parse_fails(t, NULL, 0, "would be array input number 33 (at most 32)", 0);
    t[at - 4] = '\0'; /* 32 arrays */
    canon_expr_free(parse(t, NULL, 0));
    char names[33][8];
    const char *sc[33];
    at = 0;
    for (int i = 0; i < 33; i++) {
        snprintf(names[i], sizeof names[i], "s%d", i);
        sc[i] = names[i];
        at += (size_t)sprintf(t + at, "%ss%d", i ? "+" : "", i);
    }
    parse_fails(t, sc, 33, "33 scalars declared (at most 32)", 0);
}

/* ---- both engines on every primitive ----------------------------------------------------- */

#define NMAX 100003u
static float *g_in[3], *g_out[2];

static int setup(void **state) {
    (void)state;
    for (int i = 0; i < 3; i++)
        g_in[i] = ref_alloc(NMAX * sizeof(float));
    for (int i = 0; i < 2; i++)
        g_out[i] = ref_alloc((NMAX + 64) * sizeof(float));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int i = 0; i < 3; i++)
        free(g_in[i]);
    for (int i = 0; i < 2; i++)
        free(g_out[i]);
    return 0;
}

static const float specials[] = {NAN, -NAN, 0.0f, -0.0f, INFINITY, -INFINITY, 1e-40f,
                                 -1e-40f, FLT_MIN, FLT_MAX, -FLT_MAX, 1.0f, -1.0f, 0.5f, 2.0f,
                                 -2.0f, 3.0f, -3.0f};
#define N_SPECIALS (sizeof specials / sizeof specials[0])

/* Inputs within kind k's test range of prims.def, every 7th a special value. */
static void fill(uint64_t *rng, float *x, uint64_t n, const canon_kind_info *k) {
    for (uint64_t i = 0; i < n; i++)
        x[i] = i % 7 == 3 ? specials[ref_rand(rng) % N_SPECIALS]
                          : (float)(k->test_lo + (k->test_hi - k->test_lo) * ref_uniform(rng));
}

/* The expression text of kind k applied to a, b, c (its arity), or NULL when k is not
 * writable. */
static const char *spell(const canon_kind_info *k, char *buf, size_t cap) {
    static const char *const operand[] = {"a", "b", "c"};
    switch (k->syntax) {
    case CANON_SYN_NONE:
        return NULL;
    case CANON_SYN_CALL:
        snprintf(buf, cap, "%s(%s%s%s%s%s)", k->spelling, operand[0], k->arity > 1 ? ", " : "",
                 k->arity > 1 ? operand[1] : "", k->arity > 2 ? ", " : "",
                 k->arity > 2 ? operand[2] : "");
        return buf;
    case CANON_SYN_PREFIX:
        snprintf(buf, cap, "%s a", k->spelling);
        return buf;
    default:
        snprintf(buf, cap, "a %s b", k->spelling);
        return buf;
    }
}

/* Runs expression h (arity arrays) over n elements into g_out[which] on backend `b`. */
static void run_raw(uint64_t h, unsigned arrays, uint64_t n, unsigned which, const char *b,
                    float *result) {
    REF_OK(hg_set_backend(b));
    const float *in[3] = {g_in[0], g_in[1], g_in[2]};
    REF_OK(hg_expr_run_raw(h, in, arrays, NULL, 0, g_out[which], n, result));
}

/* 1 when the JIT backend exists in this build. */
static int have_jit(void) {
    int ok = hg_set_backend("jit") == HG_OK;
    if (!ok)
        REF_OK(hg_set_backend("interp"));
    return ok;
}

/* Every writable kind of prims.def, alone and inside a small tree, over lengths that hit
 * every path of both engines (exact JIT kernels, masked tails, blocks, threads): the two
 * engines agree bit for bit (NaNs as NaNs), and exact kinds equal canon_apply_f32. */
static void test_every_primitive_both_engines(void **state) {
    (void)state;
    if (!have_jit())
        skip();
    static const uint64_t lengths[] = {0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000, 1025,
                                       NMAX};
    uint64_t rng = 42;
    char text[128];
    for (unsigned kk = 0; kk < CANON_KIND_COUNT; kk++) {
        const canon_kind_info *k = &canon_kinds[kk];
        if (!spell(k, text, sizeof text))
            continue;
        char tree[200];
        snprintf(tree, sizeof tree, "(%s) * 0.5 + minimum(a, c)", text);
        const char *const texts[] = {text, tree};
        for (int t = 0; t < 2; t++) {
            canon_expr *e = parse(texts[t], NULL, 0);
            uint64_t h = compile(texts[t], NULL);
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                const uint64_t n = lengths[li];
                for (unsigned j = 0; j < 3; j++)
                    fill(&rng, g_in[j], n, k);
                run_raw(h, e->n_arrays, n, 0, "jit", NULL);
                run_raw(h, e->n_arrays, n, 1, "interp", NULL);
                for (uint64_t i = 0; i < n; i++) {
                    float want = t ? g_out[1][i] : canon_apply_f32((canon_kind)kk, g_in[0][i],
                                                                    g_in[1][i], g_in[2][i]);
                    if ((k->flags & CANON_SUGAR) && !t)
                        want = g_out[1][i]; /* sugar: the interpreter's value is the reference */
                    if (!ref_same(g_out[0][i], g_out[1][i]) || !ref_same(g_out[1][i], want))
                        fail_msg("%s n=%llu [%llu] (%a, %a, %a): jit %a, interp %a, want %a",
                                 texts[t], (unsigned long long)n, (unsigned long long)i,
                                 g_in[0][i], g_in[1][i], g_in[2][i], g_out[0][i], g_out[1][i],
                                 want);
                }
            }
            REF_OK(hg_expr_cleanup(h));
            canon_expr_free(e);
        }
    }
    REF_OK(hg_set_backend("jit"));
}

/* pow against C's powf: identical on every pair of special values, within 1 ulp on random
 * bases and exponents of both signs, through both engines. */
static void test_pow_against_libm(void **state) {
    (void)state;
    int jit = have_jit();
    uint64_t h = compile("x ** y", NULL);
    const uint64_t n = N_SPECIALS * N_SPECIALS;
    for (uint64_t i = 0; i < n; i++) {
        g_in[0][i] = specials[i / N_SPECIALS];
        g_in[1][i] = specials[i % N_SPECIALS];
    }
    uint64_t rng = 7;
    const uint64_t m = n + 50000;
    for (uint64_t i = n; i < m; i++) {
        double s = ref_uniform(&rng);
        g_in[0][i] = (float)((i % 2 ? -1 : 1) * exp(40 * (ref_uniform(&rng) - 0.5)));
        g_in[1][i] = i % 2 ? (float)floor(20 * (s - 0.5)) : (float)(12 * (s - 0.5));
    }
    run_raw(h, 2, m, 1, "interp", NULL);
    if (jit)
        run_raw(h, 2, m, 0, "jit", NULL);
    for (uint64_t i = 0; i < m; i++) {
        float x = g_in[0][i], y = g_in[1][i], want = powf(x, y), got = g_out[1][i];
        if (jit && !ref_same(g_out[0][i], got))
            fail_msg("pow(%a, %a): jit %a, interp %a", x, y, g_out[0][i], got);
        int ok = ref_same(got, want); /* special results exact, the rest within 1 ulp */
        if (!ok && isfinite(want) && want != 0)
            ok = fabs((double)got - want) <= nextafterf(fabsf(want), INFINITY) - fabsf(want);
        if (!ok)
            fail_msg("pow(%a, %a) = %a, powf gives %a", x, y, got, want);
    }
    REF_OK(hg_expr_cleanup(h));
    if (jit)
        REF_OK(hg_set_backend("jit"));
}

/* Reductions of expressions on both engines: sums within the bound of a double sum, mean,
 * min and max exact, NaN propagating. */
static void test_reductions(void **state) {
    (void)state;
    int jit = have_jit();
    static const char *const texts[] = {"sum((a-b)**2)", "mean(a*b)", "min(a-b)", "max(abs(a))",
                                        "sum(where(a > 0, a, 0))"};
    uint64_t rng = 3;
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        uint64_t h = compile(texts[t], NULL);
        for (uint64_t n = 1; n <= NMAX; n = n * 7 + 3) {
            double ref = 0, scale = 0, mn = INFINITY, mx = -INFINITY;
            for (uint64_t i = 0; i < n; i++) {
                g_in[0][i] = (float)(20 * ref_uniform(&rng) - 10);
                g_in[1][i] = (float)(20 * ref_uniform(&rng) - 10);
                double a = g_in[0][i], b = g_in[1][i];
                double v = t == 0 ? (double)((g_in[0][i] - g_in[1][i]) * (g_in[0][i] - g_in[1][i]))
                         : t == 1 ? (double)(g_in[0][i] * g_in[1][i])
                         : t == 2 ? (double)(g_in[0][i] - g_in[1][i]) : t == 3 ? fabs(a)
                                  : (a > 0 ? a : 0);
                ref += v;
                scale += fabs(v);
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
                (void)b;
            }
            if (t == 1) {
                ref /= (double)n;
                scale /= (double)n;
            }
            if (t == 2 || t == 3)
                ref = t == 2 ? mn : mx;
            float r[2] = {NAN, NAN};
            run_raw(h, 2 - (t == 3 || t == 4), n, 0, "interp", &r[0]);
            if (jit)
                run_raw(h, 2 - (t == 3 || t == 4), n, 0, "jit", &r[1]);
            for (int e = 0; e < 1 + jit; e++) {
                double bound = t == 2 || t == 3 ? 0 : 1e-6 * log2((double)n + 2) * scale + 1e-30;
                if (!(fabs(r[e] - ref) <= bound))
                    fail_msg("%s n=%llu (%s): %.9g, reference %.9g, bound %g", texts[t],
                             (unsigned long long)n, e ? "jit" : "interp", r[e], ref, bound);
            }
        }
        /* NaN propagates; min/max of nothing is refused; sum of nothing is 0 */
        g_in[0][5] = NAN;
        float r = 0;
        run_raw(h, 2 - (t == 3 || t == 4), 10, 0, "interp", &r);
        if (t != 4) /* where(NaN > 0, ...) takes the 0 branch */
            assert_true(isnan(r));
        REF_OK(hg_set_backend("interp"));
        const float *in[2] = {g_in[0], g_in[1]};
        hg_status st = hg_expr_run_raw(h, in, 2 - (t == 3 || t == 4), NULL, 0, NULL, 0, &r);
        if (t == 2 || t == 3) {
            assert_int_equal(st, HG_ERR_INVALID_ARGUMENT);
            assert_non_null(strstr(hg_last_error(), "of no elements"));
        } else {
            assert_int_equal(st, HG_OK);
            assert_true(t == 1 ? isnan(r) : r == 0.0f); /* mean of nothing: 0/0 */
        }
        REF_OK(hg_expr_cleanup(h));
    }
    if (jit)
        REF_OK(hg_set_backend("jit"));
}

/* Scalars are run-time parameters: new values never compile again. */
static void test_parameters_never_recompile(void **state) {
    (void)state;
    if (!have_jit())
        skip();
    uint64_t h = compile("a * w + b * v", "[\"w\", \"v\"]");
    REF_OK(hg_cache_reset());
    for (int i = 0; i < 20; i++) {
        const float p[2] = {(float)i, -0.5f * (float)i};
        const float *in[2] = {g_in[0], g_in[1]};
        for (uint64_t j = 0; j < 1000; j++) {
            g_in[0][j] = (float)j;
            g_in[1][j] = 1.0f;
        }
        REF_OK(hg_expr_run_raw(h, in, 2, p, 2, g_out[0], 1000, NULL));
        for (uint64_t j = 0; j < 1000; j++)
            assert_true(g_out[0][j] == (float)j * p[0] + 1.0f * p[1]);
    }
    hg_cache_stats st;
    REF_OK(hg_cache_stats_get(&st));
    assert_int_equal(st.compiles + st.disk_loads, 1);
    assert_int_equal(st.hits, 19);
    REF_OK(hg_expr_cleanup(h));
}

/* NaN results the engines compute differently inside (which of two NaNs an instruction
 * keeps, in what order a sum adds) come out as the default NaN: softmax outputs and
 * reduction results are then the same bits on both engines. */
static void test_nan_results_agree(void **state) {
    (void)state;
    if (!have_jit())
        skip();
    static const float patterns[][6] = {{1, NAN, 3, 4, 5, 6},      {NAN, -NAN, 3, 4, 5, 6},
                                        {-NAN, 2, -NAN, NAN, 0, 1}, {-INFINITY, INFINITY, 1, 2, 3, 4},
                                        {INFINITY, 1, 2, 3, 4, 5},   {1, 2, 3, 4, 5, -NAN}};
    uint64_t exec, x, y, r;
    REF_OK(hg_new_executor(&exec));
    x = ref_buffer(exec, 6);
    y = ref_buffer(exec, 6);
    r = ref_buffer(exec, 1);
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        float out[2][6], red[2][3];
        for (int e = 0; e < 2; e++) {
            REF_OK(hg_set_backend(e ? "interp" : "jit"));
            ref_write(exec, x, patterns[p], 6);
            REF_OK(hg_softmax_f32(exec, x, y, 6));
            ref_read(exec, y, out[e], 6);
            REF_OK(hg_reduce_sum_f32(exec, x, r, 6, &red[e][0]));
            REF_OK(hg_reduce_min_f32(exec, x, r, 6, &red[e][1]));
            REF_OK(hg_reduce_max_f32(exec, x, r, 6, &red[e][2]));
        }
        for (int i = 0; i < 6; i++)
            if (ref_bits(out[0][i]) != ref_bits(out[1][i]))
                fail_msg("softmax pattern %zu [%d]: jit %08x, interp %08x", p, i,
                         ref_bits(out[0][i]), ref_bits(out[1][i]));
        for (int i = 0; i < 3; i++) {
            assert_int_equal(ref_bits(red[0][i]), ref_bits(red[1][i]));
            if (isnan(red[0][i]))
                assert_int_equal(ref_bits(red[0][i]), 0x7fc00000u);
        }
    }
    REF_OK(hg_set_backend("jit"));
    REF_OK(hg_executor_cleanup(exec));
}

/* ---- the C API ----------------------------------------------------------------------------- */

#define SENTINEL (-777.25f)

static void fill_sentinel(float *x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        x[i] = SENTINEL;
}

static void check_untouched(uint64_t exec, uint64_t buf, uint64_t n) {
    float v[64];
    assert_true(n <= 64);
    ref_read(exec, buf, v, n);
    for (uint64_t i = 0; i < n; i++)
        assert_true(v[i] == SENTINEL);
}

/* hg_expr_run on buffers: results, in place, reductions to output[0], every bad input
 * with a message naming it and nothing written. */
static void test_run_on_buffers(void **state) {
    (void)state;
    uint64_t exec, other, a, b, c, small, foreign, h, r;
    REF_OK(hg_new_executor(&exec));
    REF_OK(hg_new_executor(&other));
    a = ref_buffer(exec, 64);
    b = ref_buffer(exec, 64);
    c = ref_buffer(exec, 64);
    small = ref_buffer(exec, 8);
    foreign = ref_buffer(other, 64);
    float v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (float)i;
    ref_write(exec, a, v, 64);
    ref_write(exec, b, v, 64);
    fill_sentinel(v, 64);
    ref_write(exec, c, v, 64);
    h = compile("x * 2 + y", NULL);
    r = compile("sum(x * y)", NULL);
    const uint64_t in[2] = {a, b};
    REF_OK(hg_expr_run(exec, h, in, 2, NULL, 0, c, 50, NULL));
    ref_read(exec, c, v, 64);
    for (int i = 0; i < 64; i++)
        assert_true(v[i] == (i < 50 ? 3.0f * (float)i : SENTINEL));
    /* in place: the output is an input */
    const uint64_t in_place[2] = {a, a};
    REF_OK(hg_expr_run(exec, h, in_place, 2, NULL, 0, a, 64, NULL));
    ref_read(exec, a, v, 64);
    for (int i = 0; i < 64; i++)
        assert_true(v[i] == 3.0f * (float)i);
    /* a reduction: the value to *out_result and output[0]; output may be 0 */
    float res = 0;
    REF_OK(hg_expr_run(exec, r, in, 2, NULL, 0, c, 4, &res));
    assert_true(res == 3.0f * (0 + 1 + 4 + 9));
    ref_read(exec, c, v, 1);
    assert_true(v[0] == res);
    res = 0;
    REF_OK(hg_expr_run(exec, r, in, 2, NULL, 0, 0, 4, &res));
    assert_true(res == 3.0f * 14);
    /* bad input: named, and nothing written */
    fill_sentinel(v, 64);
    ref_write(exec, c, v, 64);
    const uint64_t one[1] = {a}, three[3] = {a, b, b}, with_small[2] = {a, small},
                   with_foreign[2] = {a, foreign}, with_zero[2] = {a, 0}, with_exec[2] = {a, exec};
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run(exec, h, one, 1, NULL, 0, c, 8, NULL));
    assert_non_null(strstr(hg_last_error(), "takes 2 arrays and 0 scalars, got 1 and 0"));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run(exec, h, three, 3, NULL, 0, c, 8, NULL));
    const float p1[1] = {1};
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run(exec, h, in, 2, p1, 1, c, 8, NULL));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run(exec, h, NULL, 2, NULL, 0, c, 8, NULL));
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, hg_expr_run(exec, h, with_small, 2, NULL, 0, c, 9, NULL));
    assert_non_null(strstr(hg_last_error(), "array 'y'"));
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, hg_expr_run(exec, h, in, 2, NULL, 0, small, 9, NULL));
    assert_non_null(strstr(hg_last_error(), "output"));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_run(exec, h, with_foreign, 2, NULL, 0, c, 8, NULL));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_run(exec, h, with_zero, 2, NULL, 0, c, 8, NULL));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_run(exec, h, with_exec, 2, NULL, 0, c, 8, NULL));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_run(exec, h, in, 2, NULL, 0, 0, 8, NULL));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_run(exec, a, in, 2, NULL, 0, c, 8, NULL));
    assert_non_null(strstr(hg_last_error(), "is a buffer, not an expression"));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_run(h, h, in, 2, NULL, 0, c, 8, NULL));
    check_untouched(exec, c, 64);
    REF_OK(hg_expr_cleanup(h));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_run(exec, h, in, 2, NULL, 0, c, 8, NULL));
    assert_non_null(strstr(hg_last_error(), "was freed"));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_cleanup(h));
    char *json = NULL;
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_describe(h, &json));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_variables(h, &json));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_variables(r, NULL));
    check_untouched(exec, c, 64);
    /* expressions outlive executors, and clear_all_registries frees them */
    REF_OK(hg_executor_cleanup(other));
    REF_OK(hg_executor_cleanup(exec));
    REF_OK(hg_expr_variables(r, &json));
    assert_string_equal(json, "{\"arrays\":[\"x\",\"y\"],\"scalars\":[],\"kind\":\"sum\","
                              "\"output\":false,\"result\":true,\"axis\":null}");
    hg_free_string(json);
    REF_OK(hg_clear_all_registries());
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_expr_cleanup(r));
}

/* hg_expr_run_raw: no executor, in place, and pointer overlap rules. */
static void test_run_raw(void **state) {
    (void)state;
    uint64_t h = compile("a - b", NULL);
    float x[40], y[40];
    for (int i = 0; i < 40; i++) {
        x[i] = (float)i;
        y[i] = 1.0f;
    }
    const float *in[2] = {x, y};
    REF_OK(hg_expr_run_raw(h, in, 2, NULL, 0, x, 40, NULL)); /* in place */
    for (int i = 0; i < 40; i++)
        assert_true(x[i] == (float)i - 1.0f);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_raw(h, in, 2, NULL, 0, x + 1, 39, NULL));
    assert_non_null(strstr(hg_last_error(), "partly overlaps array 'a'"));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_raw(h, in, 2, NULL, 0, NULL, 40, NULL));
    const float *null_in[2] = {x, NULL};
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_raw(h, null_in, 2, NULL, 0, y, 40, NULL));
    assert_non_null(strstr(hg_last_error(), "array 'b' (input 1) is NULL"));
    const float *far[2] = {(const float *)(UINTPTR_MAX - 64), y};
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_raw(h, far, 2, NULL, 0, y, 40, NULL));
    assert_non_null(strstr(hg_last_error(), "address space"));
    REF_OK(hg_expr_run_raw(h, null_in, 2, NULL, 0, NULL, 0, NULL)); /* n = 0: nothing */
    REF_OK(hg_expr_cleanup(h));
}

/* Compile errors through the API: statuses, messages, and NULLs. */
static void test_compile_errors(void **state) {
    (void)state;
    uint64_t h = 77;
    REF_EXPECT(HG_ERR_EXPRESSION, hg_expr_compile("a +", NULL, &h));
    assert_non_null(strstr(hg_last_error(), "expression \"a +\": column 4"));
    assert_int_equal(h, 77);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_compile(NULL, NULL, &h));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_compile("a", NULL, NULL));
    REF_EXPECT(HG_ERR_JSON, hg_expr_compile("a * w", "[\"w\"", &h));
    REF_EXPECT(HG_ERR_JSON, hg_expr_compile("a * w", "[1]", &h));
    REF_EXPECT(HG_ERR_JSON, hg_expr_compile("a * w", "{\"w\": 1}", &h));
    REF_EXPECT(HG_ERR_EXPRESSION, hg_expr_compile("a * w", "[\"q\"]", &h));
    REF_OK(hg_expr_compile("a * w", "", &h));
    REF_OK(hg_expr_cleanup(h));
    REF_OK(hg_expr_compile("a * w", "[]", &h));
    REF_OK(hg_expr_cleanup(h));
    assert_int_equal(hg_status_string(HG_ERR_EXPRESSION)[0], 'm');
}

/* Documents: describe gives both forms with counts; compiling the document (whole, or its
 * "after" or "before" member) gives the same normal form; malformed programs are refused
 * with the field named. */
static void test_json_documents(void **state) {
    (void)state;
    uint64_t h = compile("where(a > 0, a, w * a) + 2.5", "[\"w\"]"), g;
    char *doc = NULL, *doc2 = NULL;
    REF_OK(hg_expr_describe(h, &doc));
    assert_non_null(strstr(doc, "\"source\":\"where(a > 0, a, w * a) + 2.5\""));
    assert_non_null(strstr(doc, "\"nodes_before\":"));
    assert_non_null(strstr(doc, "{\"op\":\"CONST\",\"value\":2.5,\"bits\":\"0x40200000\"}"));
    assert_non_null(strstr(doc, "\"op\":\"GT\"")); /* before: as written */
    REF_OK(hg_expr_compile(doc, NULL, &g));
    REF_OK(hg_expr_describe(g, &doc2));
    const char *a1 = strstr(doc, "\"after\":"), *a2 = strstr(doc2, "\"after\":");
    assert_non_null(a1);
    assert_non_null(a2);
    assert_string_equal(a1, a2);
    assert_non_null(strstr(doc2, "\"source\":null"));
    assert_non_null(strstr(doc2, "\"kind\":\"program\""));
    /* and it runs */
    float x[4] = {-2, -0.0f, 3, NAN}, y[4];
    const float *in[1] = {x};
    const float w = 0.5f;
    REF_OK(hg_expr_run_raw(g, in, 1, &w, 1, y, 4, NULL));
    assert_true(y[0] == 1.5f && y[1] == 2.5f && y[2] == 5.5f && isnan(y[3]));
    hg_free_string(doc);
    hg_free_string(doc2);
    REF_OK(hg_expr_cleanup(g));
    REF_OK(hg_expr_cleanup(h));
    /* a hand-written program with sugar, a repeated node and a NaN constant */
    const char *prog =
        "{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 0},"
        " {\"op\": \"LOAD\", \"slot\": 0}, {\"op\": \"RELU\", \"args\": [1]},"
        " {\"op\": \"CONST\", \"value\": \"NaN\"}, {\"op\": \"MAX\", \"args\": [2, 3]}],"
        " \"stages\": [{\"domain\": \"RANGE\", \"root\": 4, \"store\": 1}]}";
    REF_OK(hg_expr_compile(prog, NULL, &g));
    REF_OK(hg_expr_run_raw(g, in, 1, NULL, 0, y, 4, NULL));
    for (int i = 0; i < 4; i++)
        assert_true(isnan(y[i]));
    REF_OK(hg_expr_cleanup(g));
    static const struct {
        const char *json;
        hg_status st;
        const char *msg;
    } bad[] = {
        {"{\"arrays\": [], \"nodes\": [", HG_ERR_JSON, "malformed JSON at byte"},
        {"{}", HG_ERR_EXPRESSION, "needs \"nodes\" and \"stages\""},
        {"{\"nodes\": [], \"stages\": []}", HG_ERR_EXPRESSION, "\"arrays\" must be"},
        {"{\"arrays\": [], \"nodes\": [{\"op\": \"FOO\"}], \"stages\": []}", HG_ERR_EXPRESSION,
         "nodes[0].op \"FOO\" is not a kind"},
        {"{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"NEG\", \"args\": [0]}], \"stages\": []}",
         HG_ERR_EXPRESSION, "nodes[0].args[0] is not the index of an earlier node"},
        {"{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"LOAD\"}], \"stages\": []}",
         HG_ERR_EXPRESSION, "nodes[0] (LOAD) needs \"slot\""},
        {"{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"CONST\", \"value\": 1e39}], \"stages\": []}",
         HG_ERR_EXPRESSION, "float32 \"value\""},
        {"{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 0}],"
         " \"stages\": [{\"domain\": \"RANGE\", \"root\": 0, \"store\": 0}]}",
         HG_ERR_EXPRESSION, "stores to input slot 0"},
        {"{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 1}],"
         " \"stages\": [{\"domain\": \"RANGE\", \"root\": 0, \"store\": 1}]}",
         HG_ERR_EXPRESSION, "loads the output slot 1 before a stage stored it"},
        {"{\"arrays\": [\"x\", \"y\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 0},"
         " {\"op\": \"LOAD\", \"slot\": 1}, {\"op\": \"MUL\", \"args\": [0, 1]}],"
         " \"stages\": [{\"domain\": \"CONTRACT\", \"root\": 2, \"store\": 2, \"reduce\": \"sum\"}]}",
         HG_ERR_EXPRESSION, "is not RANGE or SCALAR"},
        {"{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 0}],"
         " \"stages\": [{\"domain\": \"SIDEWAYS\", \"root\": 0}]}",
         HG_ERR_EXPRESSION, "stages[0] needs \"domain\""},
        {"{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 0}],"
         " \"stages\": [{\"domain\": \"RANGE\", \"root\": 0}]}",
         HG_ERR_EXPRESSION, "neither stores nor reduces"},
        {"{\"arrays\": [\"exp\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 0}],"
         " \"stages\": [{\"domain\": \"RANGE\", \"root\": 0, \"reduce\": \"sum\"}]}",
         HG_ERR_EXPRESSION, "is reserved"},
        {"{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 0}],"
         " \"stages\": [{\"domain\": \"RANGE\", \"root\": 0, \"reduce\": \"sum\"}],"
         " \"result\": 2}", HG_ERR_EXPRESSION, "the result is stage 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t none = 0;
        hg_status st = hg_expr_compile(bad[i].json, NULL, &none);
        if (st != bad[i].st || !strstr(hg_last_error(), bad[i].msg))
            fail_msg("program %zu: status %d (%s), message \"%s\"; expected %d and \"%s\"", i,
                     (int)st, hg_status_string(st), hg_last_error(), (int)bad[i].st, bad[i].msg);
    }
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_compile(prog, "[\"w\"]", &g));
    /* a program whose later stage rereads an input may not write over that input */
    const char *twice =
        "{\"arrays\": [\"x\"], \"nodes\": [{\"op\": \"LOAD\", \"slot\": 0},"
        " {\"op\": \"NEG\", \"args\": [0]}, {\"op\": \"LOAD\", \"slot\": 1},"
        " {\"op\": \"ADD\", \"args\": [2, 0]}],"
        " \"stages\": [{\"domain\": \"RANGE\", \"root\": 1, \"store\": 1},"
        "              {\"domain\": \"RANGE\", \"root\": 3, \"store\": 1}]}";
    REF_OK(hg_expr_compile(twice, NULL, &g));
    float z[4] = {1, 2, 3, 4};
    const float *zin[1] = {z};
    REF_OK(hg_expr_run_raw(g, zin, 1, NULL, 0, y, 4, NULL));
    assert_true(y[0] == 0 && y[3] == 0);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_raw(g, zin, 1, NULL, 0, z, 4, NULL));
    assert_non_null(strstr(hg_last_error(), "a later stage reads"));
    REF_OK(hg_expr_cleanup(g));
}

/* ---- threads ----------------------------------------------------------------------------- */

typedef struct {
    int id;
    hg_status st;
    int wrong;
} mt_job;

/* Compiles and runs texts (some with scalars_json), describes them and compiles the
 * documents back (every JSON path through cJSON), and counts wrong results. */
static void *mt_worker(void *arg) {
    mt_job *job = arg;
    char text[64];
    float x[300], y[300];
    for (int i = 0; i < 300; i++)
        x[i] = (float)i;
    for (int round = 0; round < 40 && job->st == HG_OK; round++) {
        int k = (job->id + round) % 5; /* threads compile the same and different texts */
        snprintf(text, sizeof text, "x * %d + q", k + 1);
        uint64_t h, g;
        char *doc = NULL;
        const float q = (float)k;
        if ((job->st = hg_expr_compile(text, "[\"q\"]", &h)) != HG_OK)
            break;
        if ((job->st = hg_expr_describe(h, &doc)) == HG_OK) {
            job->st = hg_expr_compile(doc, NULL, &g);
            hg_free_string(doc);
        }
        const float *in[1] = {x};
        for (int e = 0; e < 2 && job->st == HG_OK; e++) {
            job->st = hg_expr_run_raw(e ? g : h, in, 1, &q, 1, y, 300, NULL);
            for (int i = 0; i < 300 && job->st == HG_OK; i++)
                job->wrong += y[i] != x[i] * (float)(k + 1) + q;
        }
        hg_status c = hg_expr_cleanup(h);
        job->st = job->st == HG_OK ? c : job->st;
        c = hg_expr_cleanup(g);
        job->st = job->st == HG_OK ? c : job->st;
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    pthread_t th[4];
    mt_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (mt_job){i, HG_OK, 0};
        assert_int_equal(pthread_create(&th[i], NULL, mt_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(jobs[i].st, HG_OK);
        assert_int_equal(jobs[i].wrong, 0);
    }
}

/* ---- identity: forms forced to share a hash ------------------------------------------------ */

/* Texts of different forms (same shape of call: two arrays, a map). */
static const char *const g_forms[] = {"a + b", "a * b", "a - b", "a / b", "minimum(a, b)",
                                      "maximum(a, b)", "a * b + a", "a - b * b"};
#define N_FORMS (sizeof g_forms / sizeof g_forms[0])

/* The value of form f at (x, y), computed in C. */
static float form_value(size_t f, float x, float y) {
    switch (f) {
    case 0: return x + y;
    case 1: return x * y;
    case 2: return x - y;
    case 3: return x / y;
    case 4: return canon_min_f32(x, y);
    case 5: return canon_max_f32(x, y);
    case 6: return x * y + x;
    default: return x - y * y;
    }
}

/* Child mode "collide <f>...": runs the given forms (HOLOGRAM_JIT_HASH_BITS makes their key
 * hashes collide), twice each, checks every result, prints the cache counters. */
static int child_collide(int argc, char **argv) {
    float x[100], y[100], z[100];
    for (int i = 0; i < 100; i++) {
        x[i] = (float)i * 0.25f - 3.0f;
        y[i] = 2.0f - (float)i * 0.125f;
    }
    for (int round = 0; round < 2; round++)
        for (int a = 2; a < argc; a++) {
            size_t f = (size_t)atoi(argv[a]);
            uint64_t h;
            if (hg_expr_compile(g_forms[f], NULL, &h) != HG_OK)
                return 2;
            const float *in[2] = {x, y};
            if (hg_expr_run_raw(h, in, 2, NULL, 0, z, 100, NULL) != HG_OK)
                return 3;
            for (int i = 0; i < 100; i++)
                if (!ref_same(z[i], form_value(f, x[i], y[i]))) {
                    printf("wrong: %s [%d] = %g\n", g_forms[f], i, z[i]);
                    return 4;
                }
            hg_expr_cleanup(h);
        }
    hg_cache_stats s;
    hg_cache_stats_get(&s);
    printf("compiles=%llu disk_loads=%llu hits=%llu fallbacks=%llu\n",
           (unsigned long long)s.compiles, (unsigned long long)s.disk_loads,
           (unsigned long long)s.hits, (unsigned long long)s.fallbacks);
    return 0;
}

typedef struct {
    unsigned long long compiles, disk_loads, hits, fallbacks;
} collide_report;

/* Runs "collide" with the given forms in a child with HOLOGRAM_JIT_HASH_BITS=bits and the
 * cache directory dir. */
static void run_collide(const char *dir, int bits, const size_t *forms, size_t n,
                        collide_report *r) {
    char b[40], d[600], *argv[2 + N_FORMS + 1], args[N_FORMS][8], out[512];
    snprintf(b, sizeof b, "HOLOGRAM_JIT_HASH_BITS=%d", bits);
    snprintf(d, sizeof d, "HOLOGRAM_CACHE_DIR=%s", dir);
    const char *env[] = {b, d, NULL};
    argv[0] = "test_expr";
    argv[1] = "collide";
    for (size_t i = 0; i < n; i++) {
        snprintf(args[i], sizeof args[i], "%zu", forms[i]);
        argv[2 + i] = args[i];
    }
    argv[2 + n] = NULL;
    ref_run_self(argv, env, out, sizeof out);
    assert_int_equal(sscanf(out, "compiles=%llu disk_loads=%llu hits=%llu fallbacks=%llu",
                            &r->compiles, &r->disk_loads, &r->hits, &r->fallbacks), 4);
}

/* With one bit of form hash in the keys, eight forms share two key hashes and at most two
 * disk files: every result stays right on the JIT (no fallback), from memory (the second
 * round hits) and from disk; an object of another form on disk is refused and recompiled. */
static void test_hash_collisions(void **state) {
    (void)state;
    if (!have_jit())
        skip();
    char dir[512];
    const char *base = getenv("HOLOGRAM_CACHE_DIR");
    snprintf(dir, sizeof dir, "%s/collide-%ld", base && *base && strcmp(base, "off") ? base : "/tmp",
             (long)getpid());
    size_t all[N_FORMS];
    for (size_t i = 0; i < N_FORMS; i++)
        all[i] = i;
    collide_report r;
    run_collide(dir, 1, all, N_FORMS, &r);
    assert_int_equal(r.compiles + r.disk_loads, N_FORMS);
    assert_int_equal(r.hits, N_FORMS); /* the second round, from memory */
    assert_int_equal(r.fallbacks, 0);
    run_collide(dir, 1, all, N_FORMS, &r); /* a second process: the disk holds the last two */
    assert_int_equal(r.compiles + r.disk_loads, N_FORMS);
    assert_true(r.compiles >= N_FORMS - 2);
    assert_int_equal(r.fallbacks, 0);
    /* two forms with the same low hash bit: the second finds the first's object */
    size_t pair[2] = {0, 0};
    uint64_t h0 = 0;
    for (size_t i = 0, found = 0; i < N_FORMS && found < 2; i++) {
        canon_expr *e = parse(g_forms[i], NULL, 0);
        if (found == 0 || (e->form->hash & 1) == h0) {
            h0 = e->form->hash & 1;
            pair[found++] = i;
        }
        canon_expr_free(e);
    }
    assert_int_not_equal(pair[0], pair[1]);
    run_collide(dir, 1, &pair[0], 1, &r); /* stores form A under the shared name */
    run_collide(dir, 1, &pair[0], 1, &r);
    assert_int_equal(r.disk_loads, 1);
    run_collide(dir, 1, &pair[1], 1, &r); /* finds A's object: refused, recompiled */
    assert_int_equal(r.compiles, 1);
    assert_int_equal(r.disk_loads, 0);
    run_collide(dir, 1, &pair[1], 1, &r); /* now B's object is there */
    assert_int_equal(r.compiles, 0);
    assert_int_equal(r.disk_loads, 1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "collide") == 0)
        return child_collide(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_ops_share_kernels),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_cse_and_counts),
        cmocka_unit_test(test_errors_name_the_column),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_every_primitive_both_engines),
        cmocka_unit_test(test_pow_against_libm),
        cmocka_unit_test(test_reductions),
        cmocka_unit_test(test_parameters_never_recompile),
        cmocka_unit_test(test_nan_results_agree),
        cmocka_unit_test(test_run_on_buffers),
        cmocka_unit_test(test_run_raw),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_json_documents),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_hash_collisions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
