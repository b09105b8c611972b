/*
 * tests/test_compute.c — N-d compute through the public API (hologram.h "N-d compute"):
 * hg_expr_run_arrays, hg_op_run_arrays and the tensor entry points on broadcast,
 * transposed, stepped, negative-stride and offset operands, against plain C loops over the
 * broadcast index space (float32 for the exact maps: bit-equal; double for reductions and
 * softmax: the sum bound), on both engines; every error with its status and message and
 * nothing written; the kernel cache under 10,000 random shapes (a child with a small LRU
 * cap) and one kernel for views that differ only in strides never read.
 */
#include "ref.h"

#include <float.h>

#define ENGINES 2
static const char *const engines[ENGINES] = {"jit", "interp"};

/* ---- a reference walk over a broadcast index space --------------------------------------- */

/* The element of array a at index idx of a broadcast space of rank nd (a aligned at the
 * right; its extent-1 dimensions read index 0). */
static float at(const hg_array *a, const uint64_t *idx, uint64_t nd) {
    int64_t off = 0;
    for (uint64_t d = 0; d < a->ndim; d++) {
        const uint64_t i = idx[nd - a->ndim + d];
        off += (a->shape[d] == 1 ? 0 : (int64_t)i) * a->strides[d];
    }
    return a->data[off];
}

/* Advances idx over shape (row-major); 0 after the last index. */
static int next(uint64_t *idx, const uint64_t *shape, uint64_t nd) {
    for (uint64_t d = nd; d-- > 0;) {
        if (++idx[d] < shape[d])
            return 1;
        idx[d] = 0;
    }
    return 0;
}

static uint64_t numel(const uint64_t *shape, uint64_t nd) {
    uint64_t n = 1;
    for (uint64_t d = 0; d < nd; d++)
        n *= shape[d];
    return n;
}

/* A row-major hg_array of `shape` over data. */
static hg_array dense(float *data, uint64_t nd, const uint64_t *shape) {
    hg_array a = {.data = data, .ndim = nd};
    int64_t run = 1;
    for (uint64_t d = nd; d-- > 0;) {
        a.shape[d] = shape[d];
        a.strides[d] = run;
        run *= (int64_t)shape[d];
    }
    return a;
}

/* Selects engine e; 0 when this build does not have it (no JIT). */
static int set_engine(int e) { return hg_set_backend(engines[e]) == HG_OK; }

/* Fails unless the last error contains `want`. */
static void expect_message(const char *want) {
    if (!strstr(hg_last_error(), want))
        fail_msg("message \"%s\" lacks \"%s\"", hg_last_error(), want);
}

static uint64_t compile(const char *text) {
    uint64_t x = 0;
    REF_OK(hg_expr_compile(text, NULL, &x));
    return x;
}

/* ---- maps on views ----------------------------------------------------------------------- */

/* a * b + c - where(a < b, a, b) with a transposed, b a stepped row broadcast down the
 * columns, c a negative-stride column: every element bit-equal to float32 C. */
static void test_map_views(void **state) {
    (void)state;
    uint64_t rng = 3;
    float *mem = ref_alloc(4096 * sizeof(float));
    for (int i = 0; i < 4096; i++)
        mem[i] = (float)(ref_uniform(&rng) * 8 - 4);
    const uint64_t S[2] = {37, 29};
    const hg_array a = {.data = mem, .ndim = 2, .shape = {37, 29}, .strides = {1, 40}};
    const hg_array b = {.data = mem + 1500, .ndim = 1, .shape = {29}, .strides = {3}};
    const hg_array c = {.data = mem + 3000, .ndim = 2, .shape = {37, 1}, .strides = {-2, 7}};
    const hg_array in[3] = {a, b, c};
    float *out = ref_alloc(37 * 29 * sizeof(float) + 64);
    const uint64_t x = compile("a * b + c - where(a < b, a, b)");
    for (int e = 0; e < ENGINES; e++) {
        if (!set_engine(e))
            continue;
        for (int i = 0; i < 37 * 29 + 16; i++)
            out[i] = -7.0f;
        const hg_array o = dense(out, 2, S);
        REF_OK(hg_expr_run_arrays(x, in, 3, NULL, 0, &o));
        uint64_t idx[2] = {0, 0};
        uint64_t f = 0;
        do {
            const float va = at(&a, idx, 2), vb = at(&b, idx, 2), vc = at(&c, idx, 2);
            const float want = va * vb + vc - (va < vb ? va : vb);
            if (!ref_same(out[f], want))
                fail_msg("%s [%llu, %llu]: %.9g, want %.9g", engines[e],
                         (unsigned long long)idx[0], (unsigned long long)idx[1], out[f], want);
            f++;
        } while (next(idx, S, 2));
        for (int i = 0; i < 16; i++)
            assert_true(out[37 * 29 + i] == -7.0f);
    }
    REF_OK(hg_expr_cleanup(x));
    free(out);
    free(mem);
}

/* Every map op of ops.def through hg_op_run_arrays on a broadcast pair, bit-equal to the
 * same op on the gathered 1-D buffers (the 1-D ops are checked against their references
 * in test_ops.c). */
static void test_every_map_op(void **state) {
    (void)state;
    static const char *const ops[] = {"vector_add_f32", "vector_sub_f32", "vector_mul_f32",
                                      "vector_div_f32", "vector_min_f32", "vector_max_f32",
                                      "vector_abs_f32", "vector_neg_f32", "vector_relu_f32",
                                      "vector_clip_f32", "scalar_add_f32", "scalar_mul_f32",
                                      "buffer_copy",    "sigmoid_f32",    "tanh_f32",
                                      "gelu_f32"};
    uint64_t rng = 5;
    enum { R = 19, C = 70 };
    float xs[R * C], ys[C], got[R * C], flat_x[R * C], flat_y[R * C], want[R * C];
    for (int i = 0; i < R * C; i++)
        xs[i] = (float)(ref_uniform(&rng) * 12 - 6);
    for (int i = 0; i < C; i++)
        ys[i] = (float)(ref_uniform(&rng) * 12 - 6);
    const uint64_t S[2] = {R, C};
    /* x transposed in memory: x[i, j] = xs[j * R + i] */
    const hg_array x = {.data = xs, .ndim = 2, .shape = {R, C}, .strides = {1, R}};
    const hg_array y = {.data = ys, .ndim = 1, .shape = {C}, .strides = {1}};
    uint64_t idx[2] = {0, 0}, f = 0;
    do {
        flat_x[f] = at(&x, idx, 2);
        flat_y[f++] = at(&y, idx, 2);
    } while (next(idx, S, 2));
    uint64_t ex;
    REF_OK(hg_new_executor(&ex));
    const uint64_t bx = ref_buffer(ex, R * C), by = ref_buffer(ex, R * C),
                   bo = ref_buffer(ex, R * C);
    ref_write(ex, bx, flat_x, R * C);
    ref_write(ex, by, flat_y, R * C);
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        char *doc;
        REF_OK(hg_op_describe(ops[o], &doc));
        const int binary = strstr(doc, "\"arrays\":2") != NULL;
        const int n_par = strstr(doc, "\"scalars\":2") ? 2 : strstr(doc, "\"scalars\":1") ? 1 : 0;
        hg_free_string(doc);
        const float par[2] = {-1.5f, 2.25f};
        const hg_array in[2] = {x, y};
        for (int e = 0; e < ENGINES; e++) {
            if (!set_engine(e))
            continue;
            const hg_array out = dense(got, 2, S);
            REF_OK(hg_op_run_arrays(ops[o], in, binary ? 2 : 1, par, (uint64_t)n_par, NULL, &out));
            /* the same op on the flat buffers */
            char text[160];
            snprintf(text, sizeof text, "%s", ops[o]);
            hg_status st;
            if (binary)
                st = !strcmp(text, "vector_add_f32")   ? hg_vector_add_f32(ex, bx, by, bo, R * C)
                     : !strcmp(text, "vector_sub_f32") ? hg_vector_sub_f32(ex, bx, by, bo, R * C)
                     : !strcmp(text, "vector_mul_f32") ? hg_vector_mul_f32(ex, bx, by, bo, R * C)
                     : !strcmp(text, "vector_div_f32") ? hg_vector_div_f32(ex, bx, by, bo, R * C)
                     : !strcmp(text, "vector_min_f32") ? hg_vector_min_f32(ex, bx, by, bo, R * C)
                                                       : hg_vector_max_f32(ex, bx, by, bo, R * C);
            else if (!strcmp(text, "vector_clip_f32"))
                st = hg_vector_clip_f32(ex, bx, bo, R * C, par[0], par[1]);
            else if (!strcmp(text, "scalar_add_f32"))
                st = hg_scalar_add_f32(ex, bx, bo, R * C, par[0]);
            else if (!strcmp(text, "scalar_mul_f32"))
                st = hg_scalar_mul_f32(ex, bx, bo, R * C, par[0]);
            else
                st = !strcmp(text, "vector_abs_f32")    ? hg_vector_abs_f32(ex, bx, bo, R * C)
                     : !strcmp(text, "vector_neg_f32")  ? hg_vector_neg_f32(ex, bx, bo, R * C)
                     : !strcmp(text, "vector_relu_f32") ? hg_vector_relu_f32(ex, bx, bo, R * C)
                     : !strcmp(text, "buffer_copy")     ? hg_buffer_copy(ex, bx, bo, R * C)
                     : !strcmp(text, "sigmoid_f32")     ? hg_sigmoid_f32(ex, bx, bo, R * C)
                     : !strcmp(text, "tanh_f32")        ? hg_tanh_f32(ex, bx, bo, R * C)
                                                        : hg_gelu_f32(ex, bx, bo, R * C);
            REF_OK(st);
            ref_read(ex, bo, want, R * C);
            for (int i = 0; i < R * C; i++)
                if (!ref_same(got[i], want[i]))
                    fail_msg("%s %s [%d]: N-d %.9g, 1-D %.9g", engines[e], ops[o], i, got[i],
                             want[i]);
        }
    }
    REF_OK(hg_executor_cleanup(ex));
}

/* ---- reductions, softmax, losses on tensors ----------------------------------------------- */

/* The tensor of `shape` (row-major) over a new buffer of ex holding v. */
static uint64_t tensor_of(uint64_t ex, const float *v, uint64_t nd, const uint64_t *shape,
                          uint64_t *out_buf) {
    const uint64_t n = numel(shape, nd);
    const uint64_t b = ref_buffer(ex, n ? n : 1);
    ref_write(ex, b, v, n);
    char json[128] = "[";
    for (uint64_t d = 0; d < nd; d++)
        snprintf(json + strlen(json), sizeof json - strlen(json), "%s%llu", d ? ", " : "",
                 (unsigned long long)shape[d]);
    strcat(json, "]");
    uint64_t t;
    REF_OK(hg_tensor_from_buffer(b, json, &t));
    if (out_buf)
        *out_buf = b;
    return t;
}

/* Reads tensor t (row-major contiguous, over its own buffer) into v[0..n). */
static void read_tensor(uint64_t ex, uint64_t t, float *v, uint64_t n) {
    uint64_t b;
    REF_OK(hg_tensor_buffer(t, &b));
    ref_read(ex, b, v, n);
}

/* sum, mean, min, max of a [6, 5, 300] tensor's transposed view over each axis set, with
 * and without keepdims: min/max exact, sum/mean within 1e-6 * log2(n) * sum|x|. */
static void test_reduce_axes(void **state) {
    (void)state;
    enum { A = 6, B = 5, C = 300 };
    static const char *const kinds[] = {"sum", "mean", "min", "max"};
    static const char *const axes[] = {NULL, "0", "1", "2", "-1", "[0, 2]", "[1, 2]", "null"};
    static const uint32_t masks[] = {7, 1, 2, 4, 4, 5, 6, 7};
    uint64_t rng = 9;
    float *v = ref_alloc(A * B * C * sizeof(float)), *got = ref_alloc(A * B * C * sizeof(float));
    for (int i = 0; i < A * B * C; i++)
        v[i] = (float)(ref_uniform(&rng) * 20 - 10);
    uint64_t ex;
    REF_OK(hg_new_executor(&ex));
    const uint64_t base = tensor_of(ex, v, 3, (const uint64_t[]){C, B, A}, NULL);
    uint64_t t; /* [A, B, C] = permute(2, 1, 0) of the [C, B, A] buffer */
    REF_OK(hg_tensor_permute(base, "[2, 1, 0]", &t));
    for (int e = 0; e < ENGINES; e++) {
        if (!set_engine(e))
            continue;
        for (size_t k = 0; k < 4; k++)
            for (size_t ai = 0; ai < sizeof axes / sizeof axes[0]; ai++)
                for (int keep = 0; keep < 2; keep++) {
                    uint64_t r;
                    REF_OK(hg_tensor_reduce(ex, t, kinds[k], axes[ai], (uint8_t)keep, &r));
                    const uint64_t S[3] = {A, B, C};
                    uint64_t rs[3], nd_r = 0;
                    for (int d = 0; d < 3; d++)
                        if (!(masks[ai] >> d & 1) || keep)
                            rs[nd_r++] = masks[ai] >> d & 1 ? 1 : S[d];
                    uint32_t ndim;
                    REF_OK(hg_tensor_ndim(r, &ndim));
                    assert_int_equal(ndim, nd_r);
                    const uint64_t nr = numel(rs, nd_r);
                    read_tensor(ex, r, got, nr);
                    /* the reference, per output element */
                    uint64_t ridx[3] = {0, 0, 0};
                    for (uint64_t f = 0; f < nr; f++) {
                        double sum = 0, mag = 0, mn = INFINITY, mx = -INFINITY, cnt = 0;
                        uint64_t idx[3] = {0, 0, 0};
                        do {
                            int match = 1;
                            for (int d = 0, o = 0; d < 3; d++) {
                                if (masks[ai] >> d & 1) {
                                    o += keep;
                                    continue;
                                }
                                match &= idx[d] == ridx[o++];
                            }
                            if (!match)
                                continue;
                            const double x = v[idx[2] * A * B + idx[1] * A + idx[0]];
                            sum += x;
                            mag += fabs(x);
                            mn = x < mn ? x : mn;
                            mx = x > mx ? x : mx;
                            cnt++;
                        } while (next(idx, S, 3));
                        const double want = k == 0 ? sum : k == 1 ? sum / cnt : k == 2 ? mn : mx;
                        const double tol = k < 2 ? 1e-6 * log2(cnt + 2) * mag / (k ? cnt : 1) : 0;
                        if (!(fabs(got[f] - want) <= tol))
                            fail_msg("%s %s axes %s keep %d [%llu]: %.9g, want %.9g", engines[e],
                                     kinds[k], axes[ai] ? axes[ai] : "NULL", keep,
                                     (unsigned long long)f, got[f], want);
                        next(ridx, rs, nd_r);
                    }
                    REF_OK(hg_tensor_cleanup(r));
                }
    }
    REF_OK(hg_executor_cleanup(ex));
    free(v);
    free(got);
}

/* Row softmax (default axis) and column softmax (axis 0) of a [33, 130] tensor, and the
 * losses per row: against double. */
static void test_softmax_and_losses(void **state) {
    (void)state;
    enum { R = 33, C = 130 };
    uint64_t rng = 11;
    float p[R * C], q[R * C], got[R * C];
    for (int i = 0; i < R * C; i++) {
        p[i] = (float)(ref_uniform(&rng) * 0.9 + 0.05);
        q[i] = (float)ref_uniform(&rng);
    }
    uint64_t ex;
    REF_OK(hg_new_executor(&ex));
    const uint64_t S[2] = {R, C};
    const uint64_t tp = tensor_of(ex, p, 2, S, NULL), tq = tensor_of(ex, q, 2, S, NULL);
    for (int e = 0; e < ENGINES; e++) {
        if (!set_engine(e))
            continue;
        for (int axis = 0; axis < 2; axis++) {
            uint64_t s;
            REF_OK(hg_tensor_apply(ex, "softmax_f32", &tp, 1, NULL, 0, axis ? NULL : "0", 0, &s));
            read_tensor(ex, s, got, R * C);
            const int outer = axis ? R : C, inner = axis ? C : R;
            for (int o = 0; o < outer; o++) {
                double mx = -INFINITY, sum = 0;
                for (int i = 0; i < inner; i++)
                    mx = fmax(mx, p[axis ? o * C + i : i * C + o]);
                for (int i = 0; i < inner; i++)
                    sum += exp(p[axis ? o * C + i : i * C + o] - mx);
                for (int i = 0; i < inner; i++) {
                    const int at_ = axis ? o * C + i : i * C + o;
                    const double want = exp(p[at_] - mx) / sum;
                    if (!(fabs(got[at_] - want) <= 1e-6 * want + 1e-9))
                        fail_msg("%s softmax axis %d [%d]: %.9g, want %.9g", engines[e],
                                 axis ? -1 : 0, at_, got[at_], want);
                }
            }
            REF_OK(hg_tensor_cleanup(s));
        }
        uint64_t l;
        REF_OK(hg_tensor_apply(ex, "binary_cross_entropy_loss_f32", (uint64_t[]){tp, tq}, 2, NULL,
                               0, "-1", 0, &l));
        read_tensor(ex, l, got, R);
        for (int r = 0; r < R; r++) {
            double s = 0;
            for (int c = 0; c < C; c++)
                s += q[r * C + c] * log(p[r * C + c]) + (1 - q[r * C + c]) * log(1 - p[r * C + c]);
            const double want = -s / C;
            if (!(fabs(got[r] - want) <= 1e-5 * fabs(want)))
                fail_msg("%s bce row %d: %.9g, want %.9g", engines[e], r, got[r], want);
        }
        REF_OK(hg_tensor_cleanup(l));
    }
    REF_OK(hg_executor_cleanup(ex));
}

/* tensor_evaluate on views (a transpose, a slice with a step, a broadcast_to, an
 * unsqueezed row) and tensor_evaluate_into an offset view, in place too. */
static void test_tensor_evaluate(void **state) {
    (void)state;
    enum { N = 24 };
    float v[N * N], got[N * N];
    for (int i = 0; i < N * N; i++)
        v[i] = (float)(i % 37) - 18.5f;
    uint64_t ex, buf;
    REF_OK(hg_new_executor(&ex));
    const uint64_t t = tensor_of(ex, v, 2, (const uint64_t[]){N, N}, &buf);
    uint64_t tt, row, rowu, cols;
    REF_OK(hg_tensor_transpose(t, &tt));
    REF_OK(hg_tensor_select(t, 0, 5, &row));            /* [N]: row 5 */
    REF_OK(hg_tensor_unsqueeze(row, 0, &rowu));          /* [1, N] */
    REF_OK(hg_tensor_slice(t, 1, 0, -1, 2, &cols));      /* [N, N/2]: every other column */
    const uint64_t x = compile("a * 2 - b");
    for (int e = 0; e < ENGINES; e++) {
        if (!set_engine(e))
            continue;
        uint64_t r;
        REF_OK(hg_tensor_evaluate(ex, x, (uint64_t[]){tt, rowu}, 2, NULL, 0, &r));
        read_tensor(ex, r, got, N * N);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                assert_true(ref_same(got[i * N + j], v[j * N + i] * 2 - v[5 * N + j]));
        REF_OK(hg_tensor_cleanup(r));
        /* into the odd columns of a copy, from the even ones: c[:, 1::2] = a[:, ::2]*2 - b */
        uint64_t copy, odd, cbuf;
        REF_OK(hg_tensor_contiguous(ex, t, &copy));
        REF_OK(hg_tensor_slice(copy, 1, 1, -1, 2, &odd));
        REF_OK(hg_tensor_buffer(copy, &cbuf));
        REF_OK(hg_tensor_evaluate_into(ex, x, (uint64_t[]){cols, cols}, 2, NULL, 0, odd));
        ref_read(ex, cbuf, got, N * N);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                assert_true(ref_same(got[i * N + j], j % 2 ? v[i * N + j - 1] : v[i * N + j]));
        /* in place: odd = odd * 2 - odd */
        REF_OK(hg_tensor_evaluate_into(ex, x, (uint64_t[]){odd, odd}, 2, NULL, 0, odd));
        ref_read(ex, cbuf, got, N * N);
        for (int i = 0; i < N; i++)
            for (int j = 1; j < N; j += 2)
                assert_true(ref_same(got[i * N + j], v[i * N + j - 1]));
        REF_OK(hg_tensor_cleanup(odd));
        REF_OK(hg_tensor_cleanup(copy));
        REF_OK(hg_buffer_cleanup(cbuf));
    }
    REF_OK(hg_expr_cleanup(x));
    REF_OK(hg_executor_cleanup(ex));
}

/* ---- errors: a status, a message naming the value, nothing written ------------------------ */

static void test_errors(void **state) {
    (void)state;
    float mem[64], out[64];
    for (int i = 0; i < 64; i++)
        mem[i] = (float)i;
    const uint64_t add = compile("a + b"), total = compile("min(a)"), rows = compile("sum(a, axis=1)");
    const hg_array a = dense(mem, 2, (const uint64_t[]){4, 8});
    const hg_array b = dense(mem, 1, (const uint64_t[]){5});
    const hg_array o = dense(out, 2, (const uint64_t[]){4, 8});
    for (int i = 0; i < 64; i++)
        out[i] = -1.0f;
#define UNTOUCHED() for (int i = 0; i < 64; i++) assert_true(out[i] == -1.0f)
    REF_EXPECT(HG_ERR_SHAPE, hg_expr_run_arrays(add, (hg_array[]){a, b}, 2, NULL, 0, &o));
    expect_message("shapes [4, 8] and [5] do not broadcast (dimension -1: 8 against 5)");
    UNTOUCHED();
    const hg_array small = dense(out, 1, (const uint64_t[]){3});
    REF_EXPECT(HG_ERR_SHAPE, hg_expr_run_arrays(add, (hg_array[]){a, a}, 2, NULL, 0, &small));
    expect_message("do not broadcast");
    const hg_array wide = dense(out, 3, (const uint64_t[]){2, 4, 8});
    REF_EXPECT(HG_ERR_SHAPE, hg_op_run_arrays("reduce_sum_f32", &a, 1, NULL, 0, "1", &wide));
    expect_message("the result has 3 dimensions");
    UNTOUCHED();
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT,
               hg_op_run_arrays("reduce_sum_f32", &a, 1, NULL, 0, "2", &small));
    expect_message("axis 2 is out of range for 2 dimensions");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT,
               hg_op_run_arrays("reduce_sum_f32", &a, 1, NULL, 0, "[1, -1]", &small));
    expect_message("axis -1 is named twice");
    REF_EXPECT(HG_ERR_JSON, hg_op_run_arrays("reduce_sum_f32", &a, 1, NULL, 0, "[1.5]", &small));
    REF_EXPECT(HG_ERR_JSON, hg_op_run_arrays("reduce_sum_f32", &a, 1, NULL, 0, "[1,", &small));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT,
               hg_op_run_arrays("vector_neg_f32", &a, 1, NULL, 0, "0", &o));
    expect_message("a map has no axes");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_op_run_arrays("gemm_f32", &a, 1, NULL, 0, NULL, &o));
    expect_message("contraction");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_op_run_arrays("buffer_fill", NULL, 0, NULL, 0, NULL, &o));
    expect_message("reads no array");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_op_run_arrays("nope", &a, 1, NULL, 0, NULL, &o));
    expect_message("unknown op 'nope'");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_op_run_arrays("vector_add_f32", &a, 1, NULL, 0, NULL, &o));
    expect_message("takes 2 arrays and 0 scalars, got 1 and 0");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_op_run_arrays("vector_clip_f32", &a, 1, NULL, 2, NULL, &o));
    expect_message("params is NULL");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT,
               hg_op_run_arrays("vector_clip_f32", &a, 1, (const float[]){2, 1}, 2, NULL, &o));
    expect_message("bounds lo = 2, hi = 1 must be numbers with lo <= hi");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT,
               hg_op_run_arrays("vector_clip_f32", &a, 1, (const float[]){NAN, 1}, 2, NULL, &o));
    UNTOUCHED();
    /* rank, reach, data */
    hg_array deep = a;
    deep.ndim = 9;
    REF_EXPECT(HG_ERR_SHAPE, hg_expr_run_arrays(add, (hg_array[]){deep, a}, 2, NULL, 0, &o));
    expect_message("9 dimensions (at most 8)");
    hg_array far = a;
    far.strides[0] = INT64_MAX / 2;
    REF_EXPECT(HG_ERR_SHAPE, hg_expr_run_arrays(add, (hg_array[]){far, a}, 2, NULL, 0, &o));
    expect_message("overflow");
    hg_array none = a;
    none.data = NULL;
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_arrays(add, (hg_array[]){a, none}, 2, NULL, 0, &o));
    expect_message("input 2 has 32 elements and data NULL");
    /* aliasing: a broadcast output, a partial overlap; in place is fine */
    hg_array bcast = o;
    bcast.strides[0] = 0;
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_arrays(add, (hg_array[]){a, a}, 2, NULL, 0, &bcast));
    expect_message("names some elements twice");
    hg_array shifted = dense(mem + 1, 2, (const uint64_t[]){4, 8});
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_arrays(add, (hg_array[]){a, a}, 2, NULL, 0, &shifted));
    expect_message("overlaps input 1");
    UNTOUCHED();
    /* min over nothing; an expression's axis out of range, or given twice */
    const hg_array empty = dense(mem, 2, (const uint64_t[]){3, 0});
    const hg_array three = dense(out, 1, (const uint64_t[]){3});
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_op_run_arrays("reduce_min_f32", &empty, 1, NULL, 0, "1", &three));
    expect_message("reduce_min_f32 of no elements");
    const hg_array two0 = dense(mem, 2, (const uint64_t[]){3, 0});
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT,
               hg_op_run_arrays("mse_loss_f32", (hg_array[]){two0, two0}, 2, NULL, 0, "1", &three));
    expect_message("mse_loss_f32 of no elements");
    const hg_array one = dense(out, 0, NULL);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_arrays(total, &empty, 1, NULL, 0, &one));
    const hg_array v1 = dense(mem, 1, (const uint64_t[]){8});
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run_arrays(rows, &v1, 1, NULL, 0, &one));
    expect_message("axis 1 is out of range for 1 dimension");
    UNTOUCHED();
    /* an expression's axis on 1-D buffers */
    uint64_t ex, buf;
    REF_OK(hg_new_executor(&ex));
    buf = ref_buffer(ex, 8);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_expr_run(ex, rows, &buf, 1, NULL, 0, 0, 8, NULL));
    expect_message("axis 1 is out of range for 1 dimension");
    /* tensors: another executor's, a stale handle, numel overflow, the wrong out shape */
    uint64_t other, t, u, big1, big2, r;
    REF_OK(hg_new_executor(&other));
    const uint64_t tb = ref_buffer(ex, 64);
    REF_OK(hg_tensor_from_buffer(tb, "[4, 8]", &t));
    REF_OK(hg_tensor_from_buffer(ref_buffer(other, 8), "[8]", &u));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_tensor_evaluate(ex, add, (uint64_t[]){t, u}, 2, NULL, 0, &r));
    expect_message("belongs to executor");
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_tensor_evaluate(ex, 12345, (uint64_t[]){t, t}, 2, NULL, 0, &r));
    REF_OK(hg_tensor_from_buffer(tb, "[1]", &big1));
    uint64_t b1, b2;
    REF_OK(hg_tensor_broadcast_to(big1, "[65536, 1]", &b1));
    REF_OK(hg_tensor_broadcast_to(big1, "[65537]", &b2));
    REF_EXPECT(HG_ERR_SHAPE, hg_tensor_evaluate(ex, add, (uint64_t[]){b1, b2}, 2, NULL, 0, &big2));
    expect_message("[65536, 65537]");
    uint64_t w;
    REF_OK(hg_tensor_from_buffer(tb, "[8]", &w));
    REF_EXPECT(HG_ERR_SHAPE, hg_tensor_evaluate_into(ex, add, (uint64_t[]){t, t}, 2, NULL, 0, w));
    expect_message("the output has shape [8]; the operands broadcast to [4, 8]");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_tensor_reduce(ex, t, "median", NULL, 0, &r));
    expect_message("kind 'median' is not one of sum, mean, min, max");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_tensor_evaluate(ex, add, (uint64_t[]){t, t}, 2, NULL, 0, NULL));
    REF_OK(hg_executor_cleanup(other));
    REF_OK(hg_executor_cleanup(ex));
    REF_OK(hg_expr_cleanup(add));
    REF_OK(hg_expr_cleanup(total));
    REF_OK(hg_expr_cleanup(rows));
#undef UNTOUCHED
}

/* ---- the kernel cache ----------------------------------------------------------------------- */

static hg_cache_stats stats(void) {
    hg_cache_stats s;
    REF_OK(hg_cache_stats_get(&s));
    return s;
}

/* 5000 views of one [64, 1, 48] array that differ only in the stride of the extent-1
 * dimension (never read) and how the contiguous block is split run one kernel. */
static void test_stride_variants_share_a_kernel(void **state) {
    (void)state;
    if (!set_engine(0))
        skip();
    float *mem = ref_alloc(64 * 48 * sizeof(float)), *out = ref_alloc(64 * 48 * sizeof(float));
    for (int i = 0; i < 64 * 48; i++)
        mem[i] = (float)i;
    const uint64_t x = compile("a * 3 + 1");
    const hg_array o = dense(out, 3, (const uint64_t[]){64, 1, 48});
    hg_array a = dense(mem, 3, (const uint64_t[]){64, 1, 48});
    REF_OK(hg_expr_run_arrays(x, &a, 1, NULL, 0, &o));
    const hg_cache_stats before = stats();
    for (int v = 0; v < 5000; v++) {
        a.strides[1] = v * 7 - 9000; /* any value: extent 1 */
        REF_OK(hg_expr_run_arrays(x, &a, 1, NULL, 0, &o));
    }
    const hg_cache_stats after = stats();
    assert_int_equal(after.misses, before.misses);
    assert_true(after.hits >= before.hits + 5000);
    for (int i = 0; i < 64 * 48; i++)
        assert_true(out[i] == mem[i] * 3 + 1);
    REF_OK(hg_expr_cleanup(x));
    free(mem);
    free(out);
}

/* Resident memory of this process in bytes. */
static uint64_t rss(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0, res = 0;
    if (!f || fscanf(f, "%llu %llu", &pages, &res) != 2)
        fail_msg("cannot read /proc/self/statm");
    fclose(f);
    return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The child of test_cache_bound: 10,000 random shapes (ranks 1-4, extents 1-40, broadcast
 * and transposed operands, several expressions) with HOLOGRAM_CACHE_ENTRIES=64; prints the
 * compile count, entries, evictions and the growth of resident memory between the first
 * 2,000 shapes and the end, and fails unless the cache stays within its cap and memory
 * within 48 MiB of that point. */
static int child_cache_bound(void) {
    static const char *const texts[] = {"a + b", "a * b - a", "where(a < b, a, b)",
                                        "sum(a * b, axis=-1)", "max(a - b, axis=0)"};
    uint64_t xs[5];
    for (int i = 0; i < 5; i++)
        if (hg_expr_compile(texts[i], NULL, &xs[i]) != HG_OK)
            return 2;
    uint64_t rng = 77;
    enum { MAX = 40 * 40 * 40 * 40 };
    float *mem = calloc(MAX, sizeof(float)), *out = calloc(MAX, sizeof(float));
    if (!mem || !out)
        return 3;
    uint64_t rss_mark = 0;
    for (int it = 0; it < 10000; it++) {
        const uint64_t nd = 1 + ref_rand(&rng) % 4;
        uint64_t shape[4], bshape[4];
        for (uint64_t d = 0; d < nd; d++) {
            shape[d] = 1 + ref_rand(&rng) % (nd > 2 ? 12 : 40);
            bshape[d] = ref_rand(&rng) % 3 == 0 ? 1 : shape[d];
        }
        hg_array a = dense(mem, nd, shape), b = dense(mem, nd, bshape);
        if (nd >= 2 && ref_rand(&rng) % 2) { /* a dense block with dimensions 0 and 1 swapped */
            uint64_t swapped[4];
            memcpy(swapped, shape, sizeof swapped);
            swapped[0] = shape[1];
            swapped[1] = shape[0];
            const hg_array t = dense(mem, nd, swapped);
            a.strides[0] = t.strides[1];
            a.strides[1] = t.strides[0];
        }
        const int k = (int)(ref_rand(&rng) % 5);
        uint64_t oshape[4], ond = 0;
        for (uint64_t d = 0; d < nd; d++)
            if (!(k == 3 && d == nd - 1) && !(k == 4 && d == 0))
                oshape[ond++] = shape[d];
        const hg_array o = dense(out, ond, oshape);
        hg_status st = hg_expr_run_arrays(xs[k], (hg_array[]){a, b}, 2, NULL, 0, &o);
        if (st != HG_OK) {
            printf("shape %d: %s\n", it, hg_last_error());
            return 4;
        }
        if (it == 1999)
            rss_mark = rss();
    }
    hg_cache_stats s;
    hg_cache_stats_get(&s);
    const uint64_t grow = rss() > rss_mark ? rss() - rss_mark : 0;
    printf("compiles %llu disk_loads %llu entries %llu capacity %llu evictions %llu rss_growth "
           "%llu KiB\n", (unsigned long long)s.compiles, (unsigned long long)s.disk_loads,
           (unsigned long long)s.entries, (unsigned long long)s.capacity,
           (unsigned long long)s.evictions, (unsigned long long)(grow >> 10));
    free(mem);
    free(out);
    return s.entries <= s.capacity && s.capacity == 64 && grow < (48u << 20) ? 0 : 5;
}

static void test_cache_bound(void **state) {
    (void)state;
    if (!set_engine(0))
        skip();
    char out[512];
    ref_run_self((char *[]){"test_compute", "cache_bound", NULL},
                 (const char *[]){"HOLOGRAM_CACHE_ENTRIES=64", "HOLOGRAM_BACKEND=jit", NULL},
                 out, sizeof out);
    printf("10,000 random shapes: %s", out);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "cache_bound") == 0)
        return child_cache_bound();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_views),         cmocka_unit_test(test_every_map_op),
        cmocka_unit_test(test_reduce_axes),       cmocka_unit_test(test_softmax_and_losses),
        cmocka_unit_test(test_tensor_evaluate),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_stride_variants_share_a_kernel),
        cmocka_unit_test(test_cache_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
