/*
 * tests/fuzz/fuzz_api.c — libFuzzer target for sequences of public API calls, checked
 * against a shadow model of every executor, linear buffer (its contents) and tensor.
 *
 * Input: a stream of calls, one byte for the call (fz_pick of FZ_CALLS) and bytes for its
 * arguments: slots of the shadow tables (live, freed or never used: handle 0), lengths,
 * element counts, values from fz_vals.  Calls: new_executor, executor_cleanup,
 * allocate_buffer, buffer_cleanup, buffer_fill, buffer_copy, vector_add_f32,
 * vector_mul_f32, scalar_add_f32, buffer_copy_from_slice, tensor_from_buffer,
 * tensor_cleanup.
 *
 * The model predicts each status (INVALID_HANDLE for a freed or unknown handle or a buffer
 * of another executor, OUT_OF_BOUNDS for n past a length, BUSY for a viewed buffer, else
 * HG_OK) and the contents of every buffer (float32 arithmetic in C, any NaN for NaN);
 * after each call the library must agree, and a failed call must have a message and leave
 * every buffer as it was.  Everything is freed at the end of each input (leak check).  The
 * engine is the interpreter, as in fuzz_expr.c.
 */
#include <math.h>
#include <stdint.h>

#include <hologram/hologram.h>

#define FZ_TARGET "fuzz_api"
#include "fuzz.h"

#define FZ_EXECS 3
#define FZ_BUFS 8
#define FZ_TENSORS 8
#define FZ_MAX_LEN 40
#define FZ_CALLS 12

static const float fz_vals[] = {0.0f, -0.0f, 1.0f, -2.5f, 3.0f, 1e30f, -1e-30f, 1e-45f,
                                3.4028235e38f, INFINITY, -INFINITY, NAN, 0.1f, 7.0f};
#define FZ_N_VALS (sizeof fz_vals / sizeof fz_vals[0])

typedef struct {
    uint64_t h;   /* 0: never made */
    int live;
} fz_exec;

typedef struct {
    uint64_t h;
    int live, exec, views;
    uint64_t len;
    float v[FZ_MAX_LEN];
} fz_buf;

typedef struct {
    uint64_t h;
    int live, buf;
} fz_tensor;

static struct {
    fz_exec e[FZ_EXECS];
    fz_buf b[FZ_BUFS];
    fz_tensor t[FZ_TENSORS];
    int step;
} M;

static int fz_same(float a, float b) {
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y || (isnan(a) && isnan(b));
}

/* Every live buffer's contents against the model. */
static void fz_check_buffers(const char *after) {
    float got[FZ_MAX_LEN];
    for (int i = 0; i < FZ_BUFS; i++) {
        const fz_buf *b = &M.b[i];
        if (!b->live)
            continue;
        hg_status st = hg_buffer_read(M.e[b->exec].h, b->h, got, b->len);
        FZ_CHECK(st == HG_OK, "step %d (%s): buffer_read of buffer %d: %s", M.step, after, i,
                 hg_last_error());
        for (uint64_t j = 0; j < b->len; j++)
            FZ_CHECK(fz_same(got[j], b->v[j]), "step %d (%s): buffer %d [%llu] = %a, model %a",
                     M.step, after, i, (unsigned long long)j, (double)got[j], (double)b->v[j]);
    }
}

static void fz_expect(hg_status got, hg_status want, const char *call) {
    FZ_CHECK(got == want, "step %d: %s returned %s, the model %s (%s)", M.step, call,
             hg_status_string(got), hg_status_string(want), hg_last_error());
    FZ_CHECK(got == HG_OK || hg_last_error()[0], "step %d: %s failed without a message",
             M.step, call);
}

/* The status of using executor slot ei. */
static hg_status fz_exec_status(int ei) { return M.e[ei].live ? HG_OK : HG_ERR_INVALID_HANDLE; }

/* The status of using buffer slot bi with executor slot ei. */
static hg_status fz_buf_status(int ei, int bi) {
    if (!M.e[ei].live || !M.b[bi].live || M.b[bi].exec != ei)
        return HG_ERR_INVALID_HANDLE;
    return HG_OK;
}

/* The status of an op of executor slot ei on buffer slots bufs[0..n) (in the op's operand
 * order) and n_elems elements: each operand is looked up, then its length checked, in
 * turn. */
static hg_status fz_operands(int ei, const int *bufs, int n, uint64_t n_elems) {
    if (!M.e[ei].live)
        return HG_ERR_INVALID_HANDLE;
    for (int i = 0; i < n; i++) {
        hg_status st = fz_buf_status(ei, bufs[i]);
        if (st != HG_OK)
            return st;
        if (n_elems > M.b[bufs[i]].len)
            return HG_ERR_OUT_OF_BOUNDS;
    }
    return HG_OK;
}

/* Frees the model's view of executor ei (its buffers and their tensors). */
static void fz_model_free_exec(int ei) {
    M.e[ei].live = 0;
    for (int i = 0; i < FZ_BUFS; i++)
        if (M.b[i].live && M.b[i].exec == ei)
            M.b[i].live = 0;
    for (int i = 0; i < FZ_TENSORS; i++)
        if (M.t[i].live && !M.b[M.t[i].buf].live)
            M.t[i].live = 0;
}

/* A slot for a new object: the first never used or freed one, else slot `pick`. */
static int fz_slot(int live_flags[], int n, int pick) {
    for (int i = 0; i < n; i++)
        if (!live_flags[i])
            return i;
    return pick % n;
}

/* Elementwise binary or scalar op of the model on n elements into buffer c. */
static void fz_model_map(int call, int a, int b, int c, uint64_t n, float s) {
    for (uint64_t j = 0; j < n; j++) {
        float x = M.b[a].v[j], y = call == 8 ? s : M.b[b].v[j];
        M.b[c].v[j] = call == 7 ? x * y : x + y;
    }
}

static void fz_call(fz_bytes *in) {
    int call = (int)fz_pick(in, FZ_CALLS);
    int ei = (int)fz_pick(in, FZ_EXECS);
    hg_status st, want;
    uint64_t h = 0;
    switch (call) {
    case 0: { /* new_executor into a free slot (a live one in the way is freed first) */
        int flags[FZ_EXECS];
        for (int i = 0; i < FZ_EXECS; i++)
            flags[i] = M.e[i].live;
        int slot = fz_slot(flags, FZ_EXECS, ei);
        if (M.e[slot].live) {
            fz_expect(hg_executor_cleanup(M.e[slot].h), HG_OK, "executor_cleanup");
            fz_model_free_exec(slot);
        }
        fz_expect(hg_new_executor(&h), HG_OK, "new_executor");
        M.e[slot].h = h;
        M.e[slot].live = 1;
        break;
    }
    case 1:
        fz_expect(hg_executor_cleanup(M.e[ei].h), fz_exec_status(ei), "executor_cleanup");
        if (M.e[ei].live)
            fz_model_free_exec(ei);
        break;
    case 2: { /* allocate_buffer */
        uint64_t len = fz_pick(in, FZ_MAX_LEN + 1);
        int flags[FZ_BUFS];
        for (int i = 0; i < FZ_BUFS; i++)
            flags[i] = M.b[i].live;
        int slot = fz_slot(flags, FZ_BUFS, (int)fz_u8(in));
        if (M.b[slot].live) /* the slot's buffer stays alive, owned by its executor */
            break;
        st = hg_executor_allocate_buffer(M.e[ei].h, len, &h);
        fz_expect(st, fz_exec_status(ei), "allocate_buffer");
        if (st == HG_OK)
            M.b[slot] = (fz_buf){.h = h, .live = 1, .exec = ei, .len = len};
        break;
    }
    case 3: { /* buffer_cleanup */
        int bi = (int)fz_pick(in, FZ_BUFS);
        want = !M.b[bi].live ? HG_ERR_INVALID_HANDLE : M.b[bi].views ? HG_ERR_BUSY : HG_OK;
        fz_expect(hg_buffer_cleanup(M.b[bi].h), want, "buffer_cleanup");
        if (want == HG_OK)
            M.b[bi].live = 0;
        break;
    }
    case 4: { /* buffer_fill */
        int bi = (int)fz_pick(in, FZ_BUFS);
        float v = fz_vals[fz_pick(in, FZ_N_VALS)];
        uint64_t n = fz_pick(in, FZ_MAX_LEN + 2);
        want = fz_operands(ei, &bi, 1, n);
        fz_expect(hg_buffer_fill(M.e[ei].h, M.b[bi].h, v, n), want, "buffer_fill");
        for (uint64_t j = 0; want == HG_OK && j < n; j++)
            M.b[bi].v[j] = v;
        break;
    }
    case 5: { /* buffer_copy */
        int src = (int)fz_pick(in, FZ_BUFS), dst = (int)fz_pick(in, FZ_BUFS);
        uint64_t n = fz_pick(in, FZ_MAX_LEN + 2);
        want = fz_operands(ei, (const int[]){src, dst}, 2, n);
        fz_expect(hg_buffer_copy(M.e[ei].h, M.b[src].h, M.b[dst].h, n), want, "buffer_copy");
        if (want == HG_OK)
            memmove(M.b[dst].v, M.b[src].v, n * sizeof(float));
        break;
    }
    case 6:
    case 7:
    case 8: { /* vector_add, vector_mul, scalar_add */
        int a = (int)fz_pick(in, FZ_BUFS), b = (int)fz_pick(in, FZ_BUFS);
        int c = (int)fz_pick(in, FZ_BUFS);
        uint64_t n = fz_pick(in, FZ_MAX_LEN + 2);
        float s = fz_vals[fz_pick(in, FZ_N_VALS)];
        want = call == 8 ? fz_operands(ei, (const int[]){a, c}, 2, n)
                         : fz_operands(ei, (const int[]){a, b, c}, 3, n);
        uint64_t e = M.e[ei].h;
        st = call == 6   ? hg_vector_add_f32(e, M.b[a].h, M.b[b].h, M.b[c].h, n)
             : call == 7 ? hg_vector_mul_f32(e, M.b[a].h, M.b[b].h, M.b[c].h, n)
                         : hg_scalar_add_f32(e, M.b[a].h, M.b[c].h, n, s);
        fz_expect(st, want, call == 6 ? "vector_add" : call == 7 ? "vector_mul" : "scalar_add");
        if (want == HG_OK)
            fz_model_map(call, a, b, c, n, s);
        break;
    }
    case 9: { /* buffer_copy_from_slice of k values */
        int bi = (int)fz_pick(in, FZ_BUFS);
        uint64_t k = fz_pick(in, FZ_MAX_LEN + 2);
        float v[FZ_MAX_LEN + 1];
        char text[(FZ_MAX_LEN + 1) * 24 + 4], *p = text;
        *p++ = '[';
        for (uint64_t j = 0; j < k; j++) {
            v[j] = fz_vals[fz_pick(in, FZ_N_VALS)];
            p += sprintf(p, "%s", j ? ", " : "");
            if (isnan(v[j]))
                p += sprintf(p, "NaN");
            else if (isinf(v[j]))
                p += sprintf(p, "%sInfinity", v[j] < 0 ? "-" : "");
            else
                p += sprintf(p, "%.9g", (double)v[j]);
        }
        strcpy(p, "]");
        want = fz_operands(ei, &bi, 1, k);
        fz_expect(hg_buffer_copy_from_slice(M.e[ei].h, M.b[bi].h, text), want,
                  "buffer_copy_from_slice");
        if (want == HG_OK)
            memcpy(M.b[bi].v, v, k * sizeof(float));
        break;
    }
    case 10: { /* tensor_from_buffer "[k]" */
        int bi = (int)fz_pick(in, FZ_BUFS);
        uint64_t k = fz_pick(in, FZ_MAX_LEN + 2);
        int flags[FZ_TENSORS];
        for (int i = 0; i < FZ_TENSORS; i++)
            flags[i] = M.t[i].live;
        int slot = fz_slot(flags, FZ_TENSORS, (int)fz_u8(in));
        if (M.t[slot].live)
            break;
        char shape[32];
        snprintf(shape, sizeof shape, "[%llu]", (unsigned long long)k);
        want = M.b[bi].live ? (k > M.b[bi].len ? HG_ERR_OUT_OF_BOUNDS : HG_OK)
                            : HG_ERR_INVALID_HANDLE;
        st = hg_tensor_from_buffer(M.b[bi].h, shape, &h);
        fz_expect(st, want, "tensor_from_buffer");
        if (st == HG_OK) {
            M.t[slot] = (fz_tensor){.h = h, .live = 1, .buf = bi};
            M.b[bi].views++;
        }
        break;
    }
    case 11: { /* tensor_cleanup */
        int ti = (int)fz_pick(in, FZ_TENSORS);
        want = M.t[ti].live ? HG_OK : HG_ERR_INVALID_HANDLE;
        fz_expect(hg_tensor_cleanup(M.t[ti].h), want, "tensor_cleanup");
        if (want == HG_OK) {
            M.t[ti].live = 0;
            M.b[M.t[ti].buf].views--;
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_use_interpreter();
    memset(&M, 0, sizeof M);
    fz_bytes in = {data, size, 0};
    for (M.step = 0; fz_more(&in) && M.step < 256; M.step++) {
        fz_call(&in);
        fz_check_buffers("after the call");
    }
    for (int i = 0; i < FZ_EXECS; i++)
        if (M.e[i].live)
            fz_expect(hg_executor_cleanup(M.e[i].h), HG_OK, "executor_cleanup at the end");
    return 0;
}
