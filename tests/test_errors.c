/*
 * tests/test_errors.c — every error row of API.md through the public C API.
 *
 * Each check asserts the status, that hg_last_error() names the offending value (a handle
 * in hex or decimal, a length, a bound, a backend name...), that out-parameters are not
 * written on error, and that no buffer changed.  Operations are driven from one table
 * (OPS below: every op with its signature shape), so each error row is checked for every
 * op of the family, not one op per family.
 */
#include "ref.h"

/* A handle that was never issued (shaped like a real one: kind, generation, slot). */
#define MADE_UP_HANDLE 0x0200002a0000b00bull
#define OUT_UNTOUCHED 0xA5A5A5A5A5A5A5A5ull /* pre-set into out-parameters */
#define OP_LEN 37u                          /* n used by the op tables (distinctive) */
#define GEMM_DIM 5u                         /* m = n = k for gemm, m = n for matvec */

static uint64_t g_exec;

/* ---- message checks -------------------------------------------------------------------- */

/* Fails unless hg_last_error() contains `needle` (case-insensitive). */
static void expect_msg_has(const char *needle, const char *context)
{
    const char *m = hg_last_error();
    if (!strcasestr(m, needle))
        fail_msg("%s: message \"%s\" does not contain \"%s\"", context, m, needle);
}

/* Fails unless hg_last_error() names v in hex (0x%016llx or %llx) or in decimal. */
static void expect_msg_names(uint64_t v, const char *context)
{
    char hex[24], dec[24];
    snprintf(hex, sizeof hex, "%llx", (unsigned long long)v);
    snprintf(dec, sizeof dec, "%llu", (unsigned long long)v);
    const char *m = hg_last_error();
    if (!strcasestr(m, hex) && !strstr(m, dec))
        fail_msg("%s: message \"%s\" names neither 0x%s nor %s", context, m, hex, dec);
}

/* Fails unless hg_last_error() names a or b (in decimal). */
static void expect_msg_names_either(uint64_t a, uint64_t b, const char *context)
{
    char da[24], db[24];
    snprintf(da, sizeof da, "%llu", (unsigned long long)a);
    snprintf(db, sizeof db, "%llu", (unsigned long long)b);
    const char *m = hg_last_error();
    if (!strstr(m, da) && !strstr(m, db))
        fail_msg("%s: message \"%s\" names neither %s nor %s", context, m, da, db);
}

/* Fails unless status `got` is `want` and the message names `v`. */
static void expect_error(hg_status got, hg_status want, uint64_t v, const char *context)
{
    if (got != want)
        fail_msg("%s: status %d (%s), expected %d (%s); message \"%s\"", context, (int)got,
                 hg_status_string(got), (int)want, hg_status_string(want), hg_last_error());
    if (*hg_last_error() == '\0')
        fail_msg("%s: status %s with an empty message", context, hg_status_string(got));
    expect_msg_names(v, context);
}

/* ---- buffers with a known content ------------------------------------------------------ */

/* A buffer of `len` floats holding a pattern derived from `tag`. */
static uint64_t pattern_buffer(uint64_t exec, uint64_t len, uint64_t tag)
{
    uint64_t b = ref_buffer(exec, len);
    float *v = ref_alloc(len * sizeof(float));
    uint64_t s = tag;
    for (uint64_t i = 0; i < len; i++)
        v[i] = (float)(ref_uniform(&s) * 200.0 - 100.0);
    ref_write(exec, b, v, len);
    free(v);
    return b;
}

/* A host copy of buffer b (len floats). */
static float *snapshot(uint64_t exec, uint64_t b, uint64_t len)
{
    float *v = ref_alloc(len * sizeof(float));
    ref_read(exec, b, v, len);
    return v;
}

/* Fails unless buffer b still equals `before` (len floats); frees `before`. */
static void expect_same(uint64_t exec, uint64_t b, uint64_t len, float *before,
                        const char *context)
{
    float *now = snapshot(exec, b, len);
    for (uint64_t i = 0; i < len; i++)
        if (ref_bits(now[i]) != ref_bits(before[i]))
            fail_msg("%s: buffer 0x%llx element %llu changed from %.9g to %.9g after an error",
                     context, (unsigned long long)b, (unsigned long long)i,
                     (double)before[i], (double)now[i]);
    free(now);
    free(before);
}

/* ---- the op table ---------------------------------------------------------------------- */

typedef enum { S_BIN, S_UN, S_UN1, S_UN2, S_FILL, S_RED, S_LOSS, S_GEMM, S_MATVEC } op_sig;

typedef struct {
    const char *name;
    op_sig sig;
    union {
        hg_status (*bin)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
        hg_status (*un)(uint64_t, uint64_t, uint64_t, uint64_t);
        hg_status (*un1)(uint64_t, uint64_t, uint64_t, uint64_t, float);
        hg_status (*un2)(uint64_t, uint64_t, uint64_t, uint64_t, float, float);
        hg_status (*fill)(uint64_t, uint64_t, float, uint64_t);
        hg_status (*red)(uint64_t, uint64_t, uint64_t, uint64_t, float *);
        hg_status (*loss)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, float *);
        hg_status (*gemm)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t,
                          uint64_t);
        hg_status (*matvec)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
    } fn;
    uint64_t min_n; /* smallest accepted n */
} op_row;

#define FN_S_BIN(f) {.bin = f}
#define FN_S_UN(f) {.un = f}
#define FN_S_UN1(f) {.un1 = f}
#define FN_S_UN2(f) {.un2 = f}
#define FN_S_FILL(f) {.fill = f}
#define FN_S_RED(f) {.red = f}
#define FN_S_LOSS(f) {.loss = f}
#define FN_S_GEMM(f) {.gemm = f}
#define FN_S_MATVEC(f) {.matvec = f}

/* X(name, signature shape, min n) — every operation of the public API. */
#define OPS(X)                                        \
    X(vector_add_f32, S_BIN, 0)                       \
    X(vector_sub_f32, S_BIN, 0)                       \
    X(vector_mul_f32, S_BIN, 0)                       \
    X(vector_div_f32, S_BIN, 0)                       \
    X(vector_min_f32, S_BIN, 0)                       \
    X(vector_max_f32, S_BIN, 0)                       \
    X(vector_abs_f32, S_UN, 0)                        \
    X(vector_neg_f32, S_UN, 0)                        \
    X(vector_relu_f32, S_UN, 0)                       \
    X(vector_clip_f32, S_UN2, 0)                      \
    X(scalar_add_f32, S_UN1, 0)                       \
    X(scalar_mul_f32, S_UN1, 0)                       \
    X(buffer_fill, S_FILL, 0)                         \
    X(buffer_copy, S_UN, 0)                           \
    X(reduce_sum_f32, S_RED, 0)                       \
    X(reduce_min_f32, S_RED, 1)                       \
    X(reduce_max_f32, S_RED, 1)                       \
    X(sigmoid_f32, S_UN, 0)                           \
    X(tanh_f32, S_UN, 0)                              \
    X(gelu_f32, S_UN, 0)                              \
    X(softmax_f32, S_UN, 1)                           \
    X(mse_loss_f32, S_LOSS, 1)                        \
    X(cross_entropy_loss_f32, S_LOSS, 1)              \
    X(binary_cross_entropy_loss_f32, S_LOSS, 1)       \
    X(gemm_f32, S_GEMM, 0)                            \
    X(matvec_f32, S_MATVEC, 0)

static const op_row k_ops[] = {
#define OP_ROW(name, sig, min_n) {#name, sig, FN_##sig(hg_##name), min_n},
    OPS(OP_ROW)
#undef OP_ROW
};
#define N_OPS (sizeof k_ops / sizeof k_ops[0])

/* Number of buffer operands of a signature shape. */
static int sig_buffers(op_sig s)
{
    switch (s) {
    case S_FILL:
        return 1;
    case S_UN:
    case S_UN1:
    case S_UN2:
    case S_RED:
        return 2;
    default:
        return 3;
    }
}

/* Elements operand `pos` must hold when the op runs at size n. */
static uint64_t sig_need(op_sig s, int pos, uint64_t n)
{
    if ((s == S_RED && pos == 1) || (s == S_LOSS && pos == 2))
        return 1;
    if (s == S_GEMM || (s == S_MATVEC && pos == 0))
        return n * n;
    return n;
}

/* Calls op r with executor e, buffers b[] and size n (gemm: m = n = k = n; matvec:
 * m = n = n; clip bounds lo, hi). */
static hg_status op_call(const op_row *r, uint64_t e, const uint64_t *b, uint64_t n, float lo,
                         float hi, float *result)
{
    switch (r->sig) {
    case S_BIN:
        return r->fn.bin(e, b[0], b[1], b[2], n);
    case S_UN:
        return r->fn.un(e, b[0], b[1], n);
    case S_UN1:
        return r->fn.un1(e, b[0], b[1], n, 2.0f);
    case S_UN2:
        return r->fn.un2(e, b[0], b[1], n, lo, hi);
    case S_FILL:
        return r->fn.fill(e, b[0], 1.0f, n);
    case S_RED:
        return r->fn.red(e, b[0], b[1], n, result);
    case S_LOSS:
        return r->fn.loss(e, b[0], b[1], b[2], n, result);
    case S_GEMM:
        return r->fn.gemm(e, b[0], b[1], b[2], n, n, n);
    case S_MATVEC:
        return r->fn.matvec(e, b[0], b[1], b[2], n, n);
    }
    return HG_ERR_INTERNAL;
}

/* The size the table runs op r at. */
static uint64_t op_size(const op_row *r)
{
    return r->sig == S_GEMM || r->sig == S_MATVEC ? GEMM_DIM : OP_LEN;
}

/* Operands of one op call: buffers, their lengths and their contents before the call. */
typedef struct {
    uint64_t buf[3];
    uint64_t len[3];
    float *before[3];
    int count;
} operands;

/* Allocates op r's operands at size n on exec; operand `short_pos` (or -1) is one element
 * shorter than needed. */
static void operands_make(operands *o, const op_row *r, uint64_t exec, uint64_t n,
                          int short_pos)
{
    o->count = sig_buffers(r->sig);
    for (int i = 0; i < o->count; i++) {
        o->len[i] = sig_need(r->sig, i, n) - (i == short_pos ? 1 : 0);
        o->buf[i] = pattern_buffer(exec, o->len[i], 31 * (uint64_t)i + n);
        o->before[i] = snapshot(exec, o->buf[i], o->len[i]);
    }
}

/* Checks every operand is unchanged, then frees them. */
static void operands_done(operands *o, uint64_t exec, const char *context)
{
    for (int i = 0; i < o->count; i++) {
        expect_same(exec, o->buf[i], o->len[i], o->before[i], context);
        REF_OK(hg_buffer_cleanup(o->buf[i]));
    }
}

/* ---- handles --------------------------------------------------------------------------- */

/* Bad handles of every sort for one position: zero, made-up, freed, wrong kind. */
typedef struct {
    uint64_t exec;        /* the live executor */
    uint64_t freed_exec;  /* a freed executor */
    uint64_t freed_buf;   /* a freed buffer of exec */
    uint64_t tensor;      /* a live tensor (wrong kind for a buffer or executor) */
    uint64_t tensor_buf;  /* the buffer it views */
    uint64_t live_buf;    /* a live buffer (wrong kind for an executor or tensor) */
    uint64_t freed_tensor;
} handle_zoo;

static void zoo_make(handle_zoo *z)
{
    z->exec = g_exec;
    REF_OK(hg_new_executor(&z->freed_exec));
    REF_OK(hg_executor_cleanup(z->freed_exec));
    z->freed_buf = ref_buffer(g_exec, 4);
    REF_OK(hg_buffer_cleanup(z->freed_buf));
    z->tensor_buf = ref_buffer(g_exec, 64);
    REF_OK(hg_tensor_from_buffer(z->tensor_buf, "[8, 8]", &z->tensor));
    REF_OK(hg_tensor_from_buffer(z->tensor_buf, "[4]", &z->freed_tensor));
    REF_OK(hg_tensor_cleanup(z->freed_tensor));
    z->live_buf = ref_buffer(g_exec, 4);
}

static void zoo_done(handle_zoo *z)
{
    REF_OK(hg_tensor_cleanup(z->tensor));
    REF_OK(hg_buffer_cleanup(z->tensor_buf));
    REF_OK(hg_buffer_cleanup(z->live_buf));
}

/* Bad values for a buffer position / an executor position / a tensor position. */
static int zoo_bad_buffers(const handle_zoo *z, uint64_t *out)
{
    uint64_t v[] = {0, MADE_UP_HANDLE, z->freed_buf, z->tensor, z->exec, UINT64_MAX};
    memcpy(out, v, sizeof v);
    return (int)(sizeof v / sizeof v[0]);
}

static int zoo_bad_executors(const handle_zoo *z, uint64_t *out)
{
    uint64_t v[] = {0, MADE_UP_HANDLE, z->freed_exec, z->live_buf, z->tensor};
    memcpy(out, v, sizeof v);
    return (int)(sizeof v / sizeof v[0]);
}

static int zoo_bad_tensors(const handle_zoo *z, uint64_t *out)
{
    uint64_t v[] = {0, MADE_UP_HANDLE, z->freed_tensor, z->live_buf, z->exec};
    memcpy(out, v, sizeof v);
    return (int)(sizeof v / sizeof v[0]);
}

/* Every op, every handle position (executor and each buffer), every kind of bad handle:
 * INVALID_HANDLE naming it, *out_result untouched, the good buffers unchanged. */
static void test_ops_bad_handles(void **state)
{
    (void)state;
    handle_zoo z;
    zoo_make(&z);
    uint64_t bad[8];
    char ctx[160];
    for (size_t r = 0; r < N_OPS; r++) {
        const op_row *row = &k_ops[r];
        uint64_t n = op_size(row);
        operands o;
        operands_make(&o, row, g_exec, n, -1);
        for (int pos = -1; pos < o.count; pos++) {
            int nb = pos < 0 ? zoo_bad_executors(&z, bad) : zoo_bad_buffers(&z, bad);
            for (int k = 0; k < nb; k++) {
                uint64_t b[3] = {o.buf[0], o.buf[1], o.buf[2]};
                uint64_t e = g_exec;
                if (pos < 0)
                    e = bad[k];
                else
                    b[pos] = bad[k];
                float result = -1.0f;
                snprintf(ctx, sizeof ctx, "%s with handle 0x%llx as operand %d", row->name,
                         (unsigned long long)bad[k], pos);
                expect_error(op_call(row, e, b, n, -1.0f, 1.0f, &result),
                             HG_ERR_INVALID_HANDLE, bad[k], ctx);
                assert_true(result == -1.0f);
            }
        }
        operands_done(&o, g_exec, row->name);
    }
    zoo_done(&z);
}

/* A buffer of another executor is refused by every op, naming the buffer. */
static void test_ops_foreign_buffer(void **state)
{
    (void)state;
    uint64_t other;
    REF_OK(hg_new_executor(&other));
    char ctx[160];
    for (size_t r = 0; r < N_OPS; r++) {
        const op_row *row = &k_ops[r];
        uint64_t n = op_size(row);
        operands o;
        operands_make(&o, row, g_exec, n, -1);
        for (int pos = 0; pos < o.count; pos++) {
            uint64_t foreign = pattern_buffer(other, o.len[pos], 77);
            float *before = snapshot(other, foreign, o.len[pos]);
            uint64_t b[3] = {o.buf[0], o.buf[1], o.buf[2]};
            b[pos] = foreign;
            float result = -1.0f;
            snprintf(ctx, sizeof ctx, "%s with a buffer of another executor as operand %d",
                     row->name, pos);
            expect_error(op_call(row, g_exec, b, n, -1.0f, 1.0f, &result),
                         HG_ERR_INVALID_HANDLE, foreign, ctx);
            expect_same(other, foreign, o.len[pos], before, ctx);
            REF_OK(hg_buffer_cleanup(foreign));
        }
        operands_done(&o, g_exec, row->name);
    }
    REF_OK(hg_executor_cleanup(other));
}

/* Non-op functions with bad executor, buffer and tensor handles. */
static void test_api_bad_handles(void **state)
{
    (void)state;
    handle_zoo z;
    zoo_make(&z);
    uint64_t bad[8];
    int nb;
    uint64_t out = OUT_UNTOUCHED;
    uint32_t u32 = 0xA5A5A5A5u;
    uint8_t u8 = 0xA5;
    const char *s = "untouched";
    char *js = NULL;
    float f[4] = {1, 2, 3, 4};
    float *pinned = NULL;

    nb = zoo_bad_executors(&z, bad);
    for (int k = 0; k < nb; k++) {
        uint64_t h = bad[k];
        expect_error(hg_executor_allocate_buffer(h, 4, &out), HG_ERR_INVALID_HANDLE, h,
                     "executor_allocate_buffer");
        expect_error(hg_executor_allocate_boundary_buffer(h, 0, 16, 16, &out),
                     HG_ERR_INVALID_HANDLE, h, "executor_allocate_boundary_buffer");
        expect_error(hg_buffer_copy_from_slice(h, z.live_buf, "[1]"), HG_ERR_INVALID_HANDLE,
                     h, "buffer_copy_from_slice (executor)");
        expect_error(hg_buffer_to_vec(h, z.live_buf, &js), HG_ERR_INVALID_HANDLE, h,
                     "buffer_to_vec (executor)");
        expect_error(hg_buffer_write(h, z.live_buf, f, 1), HG_ERR_INVALID_HANDLE, h,
                     "buffer_write (executor)");
        expect_error(hg_buffer_read(h, z.live_buf, f, 1), HG_ERR_INVALID_HANDLE, h,
                     "buffer_read (executor)");
        expect_error(hg_buffer_pin(h, z.live_buf, &pinned, &out), HG_ERR_INVALID_HANDLE, h,
                     "buffer_pin (executor)");
        expect_error(hg_buffer_unpin(h, z.live_buf), HG_ERR_INVALID_HANDLE, h,
                     "buffer_unpin (executor)");
        expect_error(hg_tensor_contiguous(h, z.tensor, &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_contiguous (executor)");
        expect_error(hg_tensor_reshape(h, z.tensor, "[64]", &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_reshape (executor)");
        expect_error(hg_tensor_matmul(h, z.tensor, z.tensor, &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_matmul (executor)");
        expect_error(hg_executor_cleanup(h), HG_ERR_INVALID_HANDLE, h, "executor_cleanup");
    }

    nb = zoo_bad_buffers(&z, bad);
    for (int k = 0; k < nb; k++) {
        uint64_t h = bad[k];
        expect_error(hg_buffer_length(h, &u32), HG_ERR_INVALID_HANDLE, h, "buffer_length");
        expect_error(hg_buffer_is_empty(h, &u8), HG_ERR_INVALID_HANDLE, h, "buffer_is_empty");
        expect_error(hg_buffer_is_linear(h, &u8), HG_ERR_INVALID_HANDLE, h,
                     "buffer_is_linear");
        expect_error(hg_buffer_is_boundary(h, &u8), HG_ERR_INVALID_HANDLE, h,
                     "buffer_is_boundary");
        expect_error(hg_buffer_pool(h, &s), HG_ERR_INVALID_HANDLE, h, "buffer_pool");
        expect_error(hg_buffer_element_size(h, &u32), HG_ERR_INVALID_HANDLE, h,
                     "buffer_element_size");
        expect_error(hg_buffer_size_bytes(h, &u32), HG_ERR_INVALID_HANDLE, h,
                     "buffer_size_bytes");
        expect_error(hg_buffer_class_index(h, &u8), HG_ERR_INVALID_HANDLE, h,
                     "buffer_class_index");
        expect_error(hg_buffer_copy_from_slice(g_exec, h, "[1]"), HG_ERR_INVALID_HANDLE, h,
                     "buffer_copy_from_slice");
        expect_error(hg_buffer_to_vec(g_exec, h, &js), HG_ERR_INVALID_HANDLE, h,
                     "buffer_to_vec");
        expect_error(hg_buffer_write(g_exec, h, f, 1), HG_ERR_INVALID_HANDLE, h,
                     "buffer_write");
        expect_error(hg_buffer_read(g_exec, h, f, 1), HG_ERR_INVALID_HANDLE, h, "buffer_read");
        expect_error(hg_buffer_pin(g_exec, h, &pinned, &out), HG_ERR_INVALID_HANDLE, h,
                     "buffer_pin");
        expect_error(hg_buffer_unpin(g_exec, h), HG_ERR_INVALID_HANDLE, h, "buffer_unpin");
        expect_error(hg_tensor_from_buffer(h, "[1]", &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_from_buffer");
        expect_error(hg_tensor_from_buffer_with_strides(h, "[1]", "[1]", &out),
                     HG_ERR_INVALID_HANDLE, h, "tensor_from_buffer_with_strides");
        expect_error(hg_buffer_cleanup(h), HG_ERR_INVALID_HANDLE, h, "buffer_cleanup");
    }

    nb = zoo_bad_tensors(&z, bad);
    for (int k = 0; k < nb; k++) {
        uint64_t h = bad[k];
        expect_error(hg_tensor_shape(h, &js), HG_ERR_INVALID_HANDLE, h, "tensor_shape");
        expect_error(hg_tensor_strides(h, &js), HG_ERR_INVALID_HANDLE, h, "tensor_strides");
        expect_error(hg_tensor_offset(h, &u32), HG_ERR_INVALID_HANDLE, h, "tensor_offset");
        expect_error(hg_tensor_ndim(h, &u32), HG_ERR_INVALID_HANDLE, h, "tensor_ndim");
        expect_error(hg_tensor_numel(h, &u32), HG_ERR_INVALID_HANDLE, h, "tensor_numel");
        expect_error(hg_tensor_is_contiguous(h, &u8), HG_ERR_INVALID_HANDLE, h,
                     "tensor_is_contiguous");
        expect_error(hg_tensor_buffer(h, &out), HG_ERR_INVALID_HANDLE, h, "tensor_buffer");
        expect_error(hg_tensor_contiguous(g_exec, h, &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_contiguous");
        expect_error(hg_tensor_transpose(h, &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_transpose");
        expect_error(hg_tensor_reshape(g_exec, h, "[1]", &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_reshape");
        expect_error(hg_tensor_select(h, 0, 0, &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_select");
        expect_error(hg_tensor_matmul(g_exec, h, z.tensor, &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_matmul (a)");
        expect_error(hg_tensor_matmul(g_exec, z.tensor, h, &out), HG_ERR_INVALID_HANDLE, h,
                     "tensor_matmul (b)");
        expect_error(hg_tensor_cleanup(h), HG_ERR_INVALID_HANDLE, h, "tensor_cleanup");
    }

    /* out-parameters are written only on success */
    assert_true(out == OUT_UNTOUCHED);
    assert_null(pinned);
    assert_true(u32 == 0xA5A5A5A5u);
    assert_true(u8 == 0xA5);
    assert_string_equal(s, "untouched");
    assert_null(js);
    float lb[4];
    ref_read(g_exec, z.live_buf, lb, 4); /* no refused write or copy reached it */
    for (int i = 0; i < 4; i++)
        assert_true(ref_bits(lb[i]) == 0);
    zoo_done(&z);
}

/* ---- lengths --------------------------------------------------------------------------- */

/* For every op and every operand: one element too short -> OUT_OF_BOUNDS naming the
 * size (n, or the needed or actual element count), nothing written; n = UINT64_MAX is
 * OUT_OF_BOUNDS too (never wrapped around). */
static void test_ops_out_of_bounds(void **state)
{
    (void)state;
    char ctx[160];
    for (size_t r = 0; r < N_OPS; r++) {
        const op_row *row = &k_ops[r];
        uint64_t n = op_size(row);
        for (int pos = 0; pos < sig_buffers(row->sig); pos++) {
            operands o;
            operands_make(&o, row, g_exec, n, pos);
            float result = -1.0f;
            snprintf(ctx, sizeof ctx, "%s n=%llu with operand %d of %llu elements", row->name,
                     (unsigned long long)n, pos, (unsigned long long)o.len[pos]);
            hg_status st = op_call(row, g_exec, o.buf, n, -1.0f, 1.0f, &result);
            if (st != HG_ERR_OUT_OF_BOUNDS)
                fail_msg("%s: status %s, expected OUT_OF_BOUNDS (%s)", ctx,
                         hg_status_string(st), hg_last_error());
            expect_msg_names(sig_need(row->sig, pos, n), ctx);
            expect_msg_names(o.len[pos], ctx);
            assert_true(result == -1.0f);
            operands_done(&o, g_exec, ctx);
        }
        if (row->sig != S_GEMM && row->sig != S_MATVEC) {
            operands o;
            operands_make(&o, row, g_exec, n, -1);
            float result = -1.0f;
            snprintf(ctx, sizeof ctx, "%s n=UINT64_MAX", row->name);
            expect_error(op_call(row, g_exec, o.buf, UINT64_MAX, -1.0f, 1.0f, &result),
                         HG_ERR_OUT_OF_BOUNDS, UINT64_MAX, ctx);
            operands_done(&o, g_exec, ctx);
        }
    }
}

/* reduce_min/max, softmax and the losses refuse n = 0 (INVALID_ARGUMENT), the others
 * accept it and write nothing. */
static void test_ops_zero_length(void **state)
{
    (void)state;
    for (size_t r = 0; r < N_OPS; r++) {
        const op_row *row = &k_ops[r];
        operands o;
        operands_make(&o, row, g_exec, op_size(row), -1);
        float result = -1.0f;
        hg_status st = op_call(row, g_exec, o.buf, 0, -1.0f, 1.0f, &result);
        if (row->min_n > 0) {
            expect_error(st, HG_ERR_INVALID_ARGUMENT, 0, row->name);
            assert_true(result == -1.0f);
            operands_done(&o, g_exec, row->name);
        } else if (st != HG_OK) {
            fail_msg("%s n=0: status %s (%s), expected OK", row->name, hg_status_string(st),
                     hg_last_error());
        } else {
            if (row->sig == S_RED) { /* reduce_sum of nothing: 0, also written to out[0] */
                assert_true(result == 0.0f);
                o.before[1][0] = 0.0f;
            }
            operands_done(&o, g_exec, row->name);
        }
    }
}

/* clip: lo > hi and NaN bounds -> INVALID_ARGUMENT naming the bounds; lo == hi works. */
static void test_clip_bounds(void **state)
{
    (void)state;
    const op_row *clip = NULL;
    for (size_t r = 0; r < N_OPS; r++)
        if (k_ops[r].sig == S_UN2)
            clip = &k_ops[r];
    assert_non_null(clip);
    operands o;
    operands_make(&o, clip, g_exec, OP_LEN, -1);
    hg_status st = op_call(clip, g_exec, o.buf, OP_LEN, 3.5f, -1.25f, NULL);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, st);
    expect_msg_has("3.5", "clip lo > hi");
    expect_msg_has("-1.25", "clip lo > hi");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, op_call(clip, g_exec, o.buf, OP_LEN, NAN, 1.0f, NULL));
    expect_msg_has("nan", "clip lo = NaN");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, op_call(clip, g_exec, o.buf, OP_LEN, 0.0f, NAN, NULL));
    expect_msg_has("nan", "clip hi = NaN");
    operands_done(&o, g_exec, "clip bounds");

    /* lo == hi is a valid (constant) clip */
    uint64_t a = pattern_buffer(g_exec, 8, 3), c = ref_buffer(g_exec, 8);
    REF_OK(hg_vector_clip_f32(g_exec, a, c, 8, 0.5f, 0.5f));
    float got[8];
    ref_read(g_exec, c, got, 8);
    for (int i = 0; i < 8; i++)
        assert_true(got[i] == 0.5f);
    REF_OK(hg_buffer_cleanup(a));
    REF_OK(hg_buffer_cleanup(c));
}

/* gemm/matvec: output aliasing an input, and sizes whose product overflows 64 bits. */
static void test_contraction_arguments(void **state)
{
    (void)state;
    uint64_t a = pattern_buffer(g_exec, 16, 1), b = pattern_buffer(g_exec, 16, 2);
    float *sa = snapshot(g_exec, a, 16), *sb = snapshot(g_exec, b, 16);
    expect_error(hg_gemm_f32(g_exec, a, b, a, 4, 4, 4), HG_ERR_INVALID_ARGUMENT, a,
                 "gemm C == A");
    expect_error(hg_gemm_f32(g_exec, a, b, b, 4, 4, 4), HG_ERR_INVALID_ARGUMENT, b,
                 "gemm C == B");
    expect_error(hg_matvec_f32(g_exec, a, b, b, 4, 4), HG_ERR_INVALID_ARGUMENT, b,
                 "matvec y == x");
    expect_error(hg_matvec_f32(g_exec, a, b, a, 4, 4), HG_ERR_INVALID_ARGUMENT, a,
                 "matvec y == A");
    const uint64_t big = 1ull << 22; /* m*n*k = 2^66 */
    uint64_t c = ref_buffer(g_exec, 1);
    hg_status st = hg_gemm_f32(g_exec, a, b, c, big, big, big);
    if (st != HG_ERR_INVALID_ARGUMENT && st != HG_ERR_OUT_OF_BOUNDS)
        fail_msg("gemm m=n=k=2^22: status %s (%s)", hg_status_string(st), hg_last_error());
    expect_msg_names(big, "gemm m=n=k=2^22");
    st = hg_gemm_f32(g_exec, a, b, c, UINT64_MAX, 2, 2);
    if (st != HG_ERR_INVALID_ARGUMENT && st != HG_ERR_OUT_OF_BOUNDS)
        fail_msg("gemm m=2^64-1: status %s (%s)", hg_status_string(st), hg_last_error());
    expect_msg_names(UINT64_MAX, "gemm m=2^64-1");
    expect_same(g_exec, a, 16, sa, "contraction arguments");
    expect_same(g_exec, b, 16, sb, "contraction arguments");
    REF_OK(hg_buffer_cleanup(a));
    REF_OK(hg_buffer_cleanup(b));
    REF_OK(hg_buffer_cleanup(c));
}

/* ---- JSON transfer --------------------------------------------------------------------- */

/* Malformed text, non-arrays, non-number elements -> JSON (with the byte position);
 * too many elements -> OUT_OF_BOUNDS naming both counts; NaN/Infinity accepted; the
 * buffer is unchanged after every error. */
static void test_json_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t position; /* a byte position the message must name */
    } bad[] = {
        {"", 0},          {"[1, 2", 5},      {"[1,,2]", 3},  {"[1 2]", 3},
        {"{}", 0},        {"3", 0},          {"\"x\"", 0},   {"[1, \"a\"]", 4},
        {"[1, null]", 4}, {"[true]", 1},     {"[[1]]", 1},   {"[1, 2] x", 7},
        {"[nan]", 1},     {"[1, {}]", 4},
    };
    uint64_t b = pattern_buffer(g_exec, 3, 9);
    char ctx[96];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float *before = snapshot(g_exec, b, 3);
        snprintf(ctx, sizeof ctx, "copy_from_slice(%s)", bad[i].text);
        expect_error(hg_buffer_copy_from_slice(g_exec, b, bad[i].text), HG_ERR_JSON,
                     bad[i].position, ctx);
        expect_same(g_exec, b, 3, before, ctx);
    }
    float *before = snapshot(g_exec, b, 3);
    hg_status st = hg_buffer_copy_from_slice(g_exec, b, "[1, 2, 3, 4]");
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, st);
    expect_msg_has("4", "4 elements into 3");
    expect_msg_has("3", "4 elements into 3");
    expect_same(g_exec, b, 3, before, "4 elements into 3");
    before = snapshot(g_exec, b, 3);
    st = hg_buffer_copy_from_slice(g_exec, b, NULL);
    if (st != HG_ERR_INVALID_ARGUMENT && st != HG_ERR_JSON)
        fail_msg("copy_from_slice(NULL): status %s", hg_status_string(st));
    expect_same(g_exec, b, 3, before, "copy_from_slice(NULL)");

    /* accepted: Python's json.dumps spellings of non-finite values; a shorter array */
    REF_OK(hg_buffer_copy_from_slice(g_exec, b, "[NaN, Infinity, -Infinity]"));
    float got[3];
    ref_read(g_exec, b, got, 3);
    assert_true(isnan(got[0]) && got[1] == INFINITY && got[2] == -INFINITY);
    REF_OK(hg_buffer_copy_from_slice(g_exec, b, "[5]"));
    ref_read(g_exec, b, got, 3);
    assert_true(got[0] == 5.0f && got[1] == INFINITY && got[2] == -INFINITY);
    REF_OK(hg_buffer_copy_from_slice(g_exec, b, "[]"));
    REF_OK(hg_buffer_cleanup(b));
}

/* ---- allocation ------------------------------------------------------------------------ */

/* Boundary geometry outside the Atlas (class 96, width 0/49, height 0/257, width*height
 * not a multiple of 4) -> INVALID_ARGUMENT naming the value; the limits themselves work. */
static void test_boundary_geometry(void **state)
{
    (void)state;
    static const struct {
        uint64_t cls, width, height, named;
    } bad[] = {
        {96, 16, 16, 96},   {1000, 16, 16, 1000}, {0, 0, 16, 0},     {0, 49, 16, 49},
        {0, 16, 0, 0},      {0, 16, 257, 257},    {0, 3, 3, 9},      {0, 1, 2, 2},
        {0, 1ull << 40, 16, 1ull << 40},
    };
    char ctx[96];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t out = OUT_UNTOUCHED;
        snprintf(ctx, sizeof ctx, "boundary(%llu, %llu, %llu)", (unsigned long long)bad[i].cls,
                 (unsigned long long)bad[i].width, (unsigned long long)bad[i].height);
        expect_error(hg_executor_allocate_boundary_buffer(g_exec, bad[i].cls, bad[i].width,
                                                          bad[i].height, &out),
                     HG_ERR_INVALID_ARGUMENT, bad[i].named, ctx);
        assert_true(out == OUT_UNTOUCHED);
    }
    uint64_t b;
    uint32_t len;
    uint8_t cls;
    REF_OK(hg_executor_allocate_boundary_buffer(g_exec, 95, 48, 256, &b));
    REF_OK(hg_buffer_length(b, &len));
    REF_OK(hg_buffer_class_index(b, &cls));
    assert_int_equal(len, 3072);
    assert_int_equal(cls, 95);
    REF_OK(hg_buffer_cleanup(b));
    REF_OK(hg_executor_allocate_boundary_buffer(g_exec, 0, 1, 4, &b));
    REF_OK(hg_buffer_length(b, &len));
    assert_int_equal(len, 1);
    REF_OK(hg_buffer_cleanup(b));
}

/* Lengths the machine cannot hold -> NO_MEMORY naming the length, never an abort. */
static void test_absurd_lengths(void **state)
{
    (void)state;
    const uint64_t lens[] = {1ull << 40, (uint64_t)HG_MAX_BUFFER_LENGTH + 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint64_t out = OUT_UNTOUCHED;
        expect_error(hg_executor_allocate_buffer(g_exec, lens[i], &out), HG_ERR_NO_MEMORY,
                     lens[i], "allocate_buffer(absurd length)");
        assert_true(out == OUT_UNTOUCHED);
    }
}

/* ---- lifetimes ------------------------------------------------------------------------- */

/* A second cleanup of a buffer, tensor or executor is INVALID_HANDLE naming it. */
static void test_double_cleanup(void **state)
{
    (void)state;
    uint64_t b = ref_buffer(g_exec, 8), t, e;
    REF_OK(hg_tensor_from_buffer(b, "[2, 4]", &t));
    REF_OK(hg_tensor_cleanup(t));
    expect_error(hg_tensor_cleanup(t), HG_ERR_INVALID_HANDLE, t, "second tensor_cleanup");
    REF_OK(hg_buffer_cleanup(b));
    expect_error(hg_buffer_cleanup(b), HG_ERR_INVALID_HANDLE, b, "second buffer_cleanup");
    REF_OK(hg_new_executor(&e));
    REF_OK(hg_executor_cleanup(e));
    expect_error(hg_executor_cleanup(e), HG_ERR_INVALID_HANDLE, e, "second executor_cleanup");
}

/* buffer_cleanup while tensors view the buffer -> BUSY naming the count; freeing the
 * views makes it succeed. */
static void test_buffer_busy(void **state)
{
    (void)state;
    uint64_t b = pattern_buffer(g_exec, 12, 4), t[3];
    REF_OK(hg_tensor_from_buffer(b, "[3, 4]", &t[0]));
    REF_OK(hg_tensor_transpose(t[0], &t[1]));
    REF_OK(hg_tensor_select(t[0], 0, 1, &t[2]));
    float *before = snapshot(g_exec, b, 12);
    expect_error(hg_buffer_cleanup(b), HG_ERR_BUSY, 3, "buffer_cleanup with 3 views");
    expect_msg_names(b, "buffer_cleanup with 3 views");
    expect_same(g_exec, b, 12, before, "buffer_cleanup with 3 views");
    REF_OK(hg_tensor_cleanup(t[2]));
    REF_OK(hg_tensor_cleanup(t[1]));
    expect_error(hg_buffer_cleanup(b), HG_ERR_BUSY, 1, "buffer_cleanup with 1 view");
    uint32_t numel;
    REF_OK(hg_tensor_numel(t[0], &numel));
    assert_int_equal(numel, 12);
    REF_OK(hg_tensor_cleanup(t[0]));
    REF_OK(hg_buffer_cleanup(b));
}

/* executor_cleanup frees its buffers (linear, boundary, tensor-owned) and tensors: their
 * handles become INVALID_HANDLE; another executor's objects are unaffected. */
static void test_executor_cleanup_cascade(void **state)
{
    (void)state;
    uint64_t e, other, b, bb, t, tc, tc_buf, keep;
    REF_OK(hg_new_executor(&e));
    REF_OK(hg_new_executor(&other));
    b = pattern_buffer(e, 6, 5);
    keep = pattern_buffer(other, 6, 6);
    float *keep_before = snapshot(other, keep, 6);
    REF_OK(hg_executor_allocate_boundary_buffer(e, 7, 16, 16, &bb));
    REF_OK(hg_tensor_from_buffer(b, "[2, 3]", &t));
    uint64_t tt;
    REF_OK(hg_tensor_transpose(t, &tt));
    REF_OK(hg_tensor_contiguous(e, tt, &tc));
    REF_OK(hg_tensor_buffer(tc, &tc_buf));
    REF_OK(hg_executor_cleanup(e));

    uint32_t u32;
    uint64_t objects[] = {b, bb, tc_buf};
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++)
        expect_error(hg_buffer_length(objects[i], &u32), HG_ERR_INVALID_HANDLE, objects[i],
                     "buffer of a cleaned-up executor");
    uint64_t tensors[] = {t, tt, tc};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++)
        expect_error(hg_tensor_ndim(tensors[i], &u32), HG_ERR_INVALID_HANDLE, tensors[i],
                     "tensor of a cleaned-up executor");
    expect_error(hg_buffer_cleanup(b), HG_ERR_INVALID_HANDLE, b, "buffer_cleanup after");
    expect_error(hg_tensor_cleanup(t), HG_ERR_INVALID_HANDLE, t, "tensor_cleanup after");
    uint64_t nb;
    expect_error(hg_executor_allocate_buffer(e, 1, &nb), HG_ERR_INVALID_HANDLE, e,
                 "allocate on a cleaned-up executor");

    expect_same(other, keep, 6, keep_before, "another executor's buffer");
    REF_OK(hg_executor_cleanup(other));
    expect_error(hg_buffer_length(keep, &u32), HG_ERR_INVALID_HANDLE, keep,
                 "buffer of the second executor");
}

/* ---- tensors --------------------------------------------------------------------------- */

/* Shape/stride JSON, geometry, transpose, select, reshape, matmul and foreign-executor
 * errors, with the status the header gives and the offending value in the message. */
static void test_tensor_errors(void **state)
{
    (void)state;
    uint64_t b = pattern_buffer(g_exec, 24, 8), out = OUT_UNTOUCHED, t1, t2, t3;
    static const char *const bad_json[] = {"[2,", "[-1]", "[1.5]", "{}", "[\"a\"]",
                                           "3", "", "[null]", "[2, 3] x"};
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        hg_status st = hg_tensor_from_buffer(b, bad_json[i], &out);
        if (st != HG_ERR_JSON)
            fail_msg("tensor_from_buffer(%s): status %s (%s), expected JSON", bad_json[i],
                     hg_status_string(st), hg_last_error());
        st = hg_tensor_from_buffer_with_strides(b, "[2, 3]", bad_json[i], &out);
        if (st != HG_ERR_JSON)
            fail_msg("tensor strides %s: status %s (%s), expected JSON", bad_json[i],
                     hg_status_string(st), hg_last_error());
    }
    REF_EXPECT(HG_ERR_SHAPE, hg_tensor_from_buffer(b, "[]", &out));
    REF_EXPECT(HG_ERR_SHAPE, hg_tensor_from_buffer(b, "[1,1,1,1,1,1,1,1,1]", &out));
    expect_msg_names(9, "9 dimensions");
    expect_error(hg_tensor_from_buffer(b, "[5, 5]", &out), HG_ERR_OUT_OF_BOUNDS, 25,
                 "numel 25 of a 24-element buffer");
    expect_error(hg_tensor_from_buffer_with_strides(b, "[2, 3]", "[3]", &out), HG_ERR_SHAPE,
                 2, "shape/strides lengths 2 vs 1");
    /* largest reachable index: 3*7 + 2*1 = 23 fits; 3*8 + 2 = 26 does not */
    REF_OK(hg_tensor_from_buffer_with_strides(b, "[4, 3]", "[7, 1]", &t1));
    REF_OK(hg_tensor_cleanup(t1));
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS,
               hg_tensor_from_buffer_with_strides(b, "[4, 3]", "[8, 1]", &out));
    expect_msg_names_either(26, 27, "strides reaching index 26 of 24 elements");
    assert_true(out == OUT_UNTOUCHED);

    REF_OK(hg_tensor_from_buffer(b, "[24]", &t1));
    REF_OK(hg_tensor_from_buffer(b, "[2, 3, 4]", &t3));
    REF_OK(hg_tensor_from_buffer(b, "[4, 6]", &t2));
    expect_error(hg_tensor_transpose(t1, &out), HG_ERR_SHAPE, 1, "transpose of 1-D");
    expect_error(hg_tensor_transpose(t3, &out), HG_ERR_SHAPE, 3, "transpose of 3-D");
    expect_error(hg_tensor_select(t2, 2, 0, &out), HG_ERR_OUT_OF_BOUNDS, 2, "select dim 2");
    expect_error(hg_tensor_select(t2, 0, 4, &out), HG_ERR_OUT_OF_BOUNDS, 4,
                 "select index 4 of 4");
    expect_error(hg_tensor_select(t2, 1, 1000, &out), HG_ERR_OUT_OF_BOUNDS, 1000,
                 "select index 1000");
    expect_error(hg_tensor_reshape(g_exec, t2, "[5, 5]", &out), HG_ERR_SHAPE, 25,
                 "reshape 24 -> 25");
    REF_EXPECT(HG_ERR_JSON, hg_tensor_reshape(g_exec, t2, "[5,", &out));
    expect_error(hg_tensor_matmul(g_exec, t1, t2, &out), HG_ERR_SHAPE, 24, "matmul of 1-D");
    assert_true(out == OUT_UNTOUCHED);

    /* inner dimensions 11 vs 13: the message names both shapes */
    uint64_t ba = ref_buffer(g_exec, 7 * 11), bb = ref_buffer(g_exec, 13 * 17), ta, tb;
    REF_OK(hg_tensor_from_buffer(ba, "[7, 11]", &ta));
    REF_OK(hg_tensor_from_buffer(bb, "[13, 17]", &tb));
    REF_EXPECT(HG_ERR_SHAPE, hg_tensor_matmul(g_exec, ta, tb, &out));
    static const char *const named[] = {"7", "11", "13", "17"};
    for (int i = 0; i < 4; i++)
        expect_msg_has(named[i], "matmul [7, 11] x [13, 17]");
    assert_true(out == OUT_UNTOUCHED);

    /* a tensor of another executor */
    uint64_t other;
    REF_OK(hg_new_executor(&other));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_tensor_contiguous(other, t2, &out));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_tensor_reshape(other, t2, "[24]", &out));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_tensor_matmul(other, ta, ta, &out));
    assert_true(out == OUT_UNTOUCHED);
    REF_OK(hg_executor_cleanup(other));

    uint64_t all[] = {t1, t2, t3, ta, tb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        REF_OK(hg_tensor_cleanup(all[i]));
    REF_OK(hg_buffer_cleanup(ba));
    REF_OK(hg_buffer_cleanup(bb));
    REF_OK(hg_buffer_cleanup(b));
}

/* ---- utilities ------------------------------------------------------------------------- */

/* Every status has its text; other values give "unknown status". */
static void test_status_strings(void **state)
{
    (void)state;
#define CHECK_STATUS_TEXT(name, value, text) assert_string_equal(hg_status_string(name), text);
    HG_STATUS_MAP(CHECK_STATUS_TEXT)
#undef CHECK_STATUS_TEXT
    assert_string_equal(hg_status_string((hg_status)11), "unknown status");
    assert_string_equal(hg_status_string((hg_status)-1), "unknown status");
    assert_string_equal(hg_status_string((hg_status)1000000), "unknown status");
}

/* The message of a failed call is cleared by the next successful call. */
static void test_last_error_cleared(void **state)
{
    (void)state;
    uint32_t len;
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(MADE_UP_HANDLE, &len));
    assert_true(*hg_last_error() != '\0');
    const char *v;
    REF_OK(hg_get_version(&v));
    assert_string_equal(hg_last_error(), "");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_set_backend("gpu"));
    assert_true(*hg_last_error() != '\0');
    uint64_t b = ref_buffer(g_exec, 4);
    assert_string_equal(hg_last_error(), "");
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, hg_vector_add_f32(g_exec, b, b, b, 5));
    REF_OK(hg_vector_add_f32(g_exec, b, b, b, 4));
    assert_string_equal(hg_last_error(), "");
    REF_OK(hg_buffer_cleanup(b));
}

/* Backend names other than "jit" and "interp" -> INVALID_ARGUMENT naming them; the
 * current backend is kept. */
static void test_backend_names(void **state)
{
    (void)state;
    const char *before, *after;
    REF_OK(hg_get_backend(&before));
    static const char *const bad[] = {"gpu", "JIT", "", "interp "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_set_backend(bad[i]));
        if (*bad[i])
            expect_msg_has(bad[i], "set_backend");
    }
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_set_backend(NULL));
    REF_OK(hg_get_backend(&after));
    assert_string_equal(before, after);
    REF_OK(hg_set_backend("interp"));
    REF_OK(hg_get_backend(&after));
    assert_string_equal(after, "interp");
    REF_OK(hg_set_backend(before));
}

/* NULL out-parameters -> INVALID_ARGUMENT (never a crash), nothing created or written. */
static void test_null_out_params(void **state)
{
    (void)state;
    uint64_t b = pattern_buffer(g_exec, 16, 10), t, x = pattern_buffer(g_exec, 4, 11);
    uint64_t out1 = ref_buffer(g_exec, 1);
    REF_OK(hg_tensor_from_buffer(b, "[4, 4]", &t));
    float *before = snapshot(g_exec, out1, 1);
    const hg_status got[] = {
        hg_get_version(NULL),
        hg_new_executor(NULL),
        hg_executor_allocate_buffer(g_exec, 4, NULL),
        hg_executor_allocate_boundary_buffer(g_exec, 0, 16, 16, NULL),
        hg_buffer_length(b, NULL),
        hg_buffer_is_empty(b, NULL),
        hg_buffer_is_linear(b, NULL),
        hg_buffer_is_boundary(b, NULL),
        hg_buffer_pool(b, NULL),
        hg_buffer_element_size(b, NULL),
        hg_buffer_size_bytes(b, NULL),
        hg_buffer_class_index(b, NULL),
        hg_buffer_to_vec(g_exec, b, NULL),
        hg_buffer_write(g_exec, b, NULL, 1),
        hg_buffer_read(g_exec, b, NULL, 1),
        hg_reduce_sum_f32(g_exec, x, out1, 4, NULL),
        hg_reduce_min_f32(g_exec, x, out1, 4, NULL),
        hg_reduce_max_f32(g_exec, x, out1, 4, NULL),
        hg_mse_loss_f32(g_exec, x, x, out1, 4, NULL),
        hg_cross_entropy_loss_f32(g_exec, x, x, out1, 4, NULL),
        hg_binary_cross_entropy_loss_f32(g_exec, x, x, out1, 4, NULL),
        hg_tensor_from_buffer(b, "[16]", NULL),
        hg_tensor_from_buffer_with_strides(b, "[16]", "[1]", NULL),
        hg_tensor_shape(t, NULL),
        hg_tensor_strides(t, NULL),
        hg_tensor_offset(t, NULL),
        hg_tensor_ndim(t, NULL),
        hg_tensor_numel(t, NULL),
        hg_tensor_is_contiguous(t, NULL),
        hg_tensor_buffer(t, NULL),
        hg_tensor_contiguous(g_exec, t, NULL),
        hg_tensor_transpose(t, NULL),
        hg_tensor_reshape(g_exec, t, "[16]", NULL),
        hg_tensor_select(t, 0, 0, NULL),
        hg_tensor_matmul(g_exec, t, t, NULL),
        hg_get_backend(NULL),
        hg_cache_stats_get(NULL),
    };
    for (size_t i = 0; i < sizeof got / sizeof got[0]; i++)
        if (got[i] != HG_ERR_INVALID_ARGUMENT)
            fail_msg("NULL out-parameter case %zu: status %s, expected INVALID_ARGUMENT", i,
                     hg_status_string(got[i]));
    expect_same(g_exec, out1, 1, before, "reductions with NULL out_result");
    /* NULL data pointers are fine when nothing is transferred */
    REF_OK(hg_buffer_write(g_exec, b, NULL, 0));
    REF_OK(hg_buffer_read(g_exec, b, NULL, 0));
    /* nothing was created: the buffer has exactly one view */
    REF_EXPECT(HG_ERR_BUSY, hg_buffer_cleanup(b));
    expect_msg_names(1, "views after NULL out-parameter calls");
    REF_OK(hg_tensor_cleanup(t));
    REF_OK(hg_buffer_cleanup(b));
    REF_OK(hg_buffer_cleanup(x));
    REF_OK(hg_buffer_cleanup(out1));
}

/* clear_all_registries frees every executor, buffer and tensor. */
static void test_clear_all_registries(void **state)
{
    (void)state;
    uint64_t e, b, t;
    REF_OK(hg_new_executor(&e));
    b = ref_buffer(e, 4);
    REF_OK(hg_tensor_from_buffer(b, "[4]", &t));
    REF_OK(hg_clear_all_registries());
    uint32_t u32;
    expect_error(hg_buffer_length(b, &u32), HG_ERR_INVALID_HANDLE, b, "buffer after clear");
    expect_error(hg_tensor_ndim(t, &u32), HG_ERR_INVALID_HANDLE, t, "tensor after clear");
    expect_error(hg_executor_cleanup(e), HG_ERR_INVALID_HANDLE, e, "executor after clear");
    expect_error(hg_executor_cleanup(g_exec), HG_ERR_INVALID_HANDLE, g_exec,
                 "fixture executor after clear");
    g_exec = 0; /* already freed */
}

/* ---- fixtures -------------------------------------------------------------------------- */

static int exec_setup(void **state)
{
    (void)state;
    return hg_new_executor(&g_exec) == HG_OK ? 0 : -1;
}

static int exec_teardown(void **state)
{
    (void)state;
    hg_status st = g_exec ? hg_executor_cleanup(g_exec) : HG_OK;
    g_exec = 0;
    return st == HG_OK ? 0 : -1;
}

#define T(f) cmocka_unit_test_setup_teardown(f, exec_setup, exec_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_status_strings),       T(test_last_error_cleared),
        T(test_backend_names),        T(test_null_out_params),
        T(test_api_bad_handles),      T(test_ops_bad_handles),
        T(test_ops_foreign_buffer),   T(test_ops_out_of_bounds),
        T(test_ops_zero_length),      T(test_clip_bounds),
        T(test_contraction_arguments), T(test_json_errors),
        T(test_boundary_geometry),    T(test_absurd_lengths),
        T(test_double_cleanup),       T(test_buffer_busy),
        T(test_executor_cleanup_cascade), T(test_tensor_errors),
        T(test_clear_all_registries),
    };
    return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
