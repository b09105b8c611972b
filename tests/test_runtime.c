/*
 * tests/test_runtime.c — the runtime core through the public API: handles, executors,
 * buffers (linear and boundary), transfer, argument checks of every op (table-driven from
 * canon/ops.def), backend choice, cache statistics, threads and memory reuse.
 * Numeric results are checked against plain double-precision loops.
 */
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ref.h"

/* The message of the last failed call contains `what`. */
static void expect_message(const char *what) {
    if (!strstr(hg_last_error(), what))
        fail_msg("last error \"%s\" does not mention \"%s\"", hg_last_error(), what);
}

/* The message of the last failed call names `handle` as 0x%016llx. */
static void expect_handle_named(uint64_t handle) {
    char hex[32];
    snprintf(hex, sizeof hex, "0x%016llx", (unsigned long long)handle);
    expect_message(hex);
}

static uint64_t new_executor(void) {
    uint64_t e = 0;
    REF_OK(hg_new_executor(&e));
    assert_true(e != 0);
    return e;
}

/* Fills the first n elements of `buf` with `value` through hg_buffer_write. */
static void write_constant(uint64_t e, uint64_t buf, float value, uint64_t n) {
    float *v = ref_alloc(n * sizeof *v);
    for (uint64_t i = 0; i < n; i++)
        v[i] = value;
    ref_write(e, buf, v, n);
    free(v);
}

/* 1 when the first n elements of `buf` all equal `value`. */
static int all_equal(uint64_t e, uint64_t buf, float value, uint64_t n) {
    float *v = ref_alloc(n * sizeof *v);
    ref_read(e, buf, v, n);
    int same = 1;
    for (uint64_t i = 0; i < n; i++)
        same &= ref_same(v[i], value);
    free(v);
    return same;
}

/* ---- every public op, callable from one table ----------------------------------------
 * call_<op>(e, bufs, n, lo, hi, &r): runs the op on bufs[] (operands in the order of its
 * C signature) over n elements; GEMM uses m = n, n = 1, k = 1, MATVEC m = n, n = 1, so
 * every operand needs at most n elements.  Scalar parameters are lo (and hi). */
typedef hg_status (*op_caller)(uint64_t e, const uint64_t *b, uint64_t n, float lo, float hi,
                               float *r);

#define CALL_BIN(name) return hg_##name(e, b[0], b[1], b[2], n);
#define CALL_UN(name) return hg_##name(e, b[0], b[1], n);
#define CALL_UN1(name) return hg_##name(e, b[0], b[1], n, lo);
#define CALL_UN2(name) return hg_##name(e, b[0], b[1], n, lo, hi);
#define CALL_FILL(name) return hg_##name(e, b[0], lo, n);
#define CALL_COPY(name) return hg_##name(e, b[0], b[1], n);
#define CALL_RED(name) return hg_##name(e, b[0], b[1], n, r);
#define CALL_LOSS(name) return hg_##name(e, b[0], b[1], b[2], n, r);
#define CALL_GEMM(name) return hg_##name(e, b[0], b[1], b[2], n, 1, 1);
#define CALL_MATVEC(name) return hg_##name(e, b[0], b[1], b[2], n, 1);

/* Operand counts per signature shape, and which operands (bit i: operand i) the callers
 * above make need n elements (the others need 1). */
enum { NB_BIN = 3, NB_UN = 2, NB_UN1 = 2, NB_UN2 = 2, NB_FILL = 1, NB_COPY = 2, NB_RED = 2,
       NB_LOSS = 3, NB_GEMM = 3, NB_MATVEC = 3 };
enum { FULL_BIN = 7, FULL_UN = 3, FULL_UN1 = 3, FULL_UN2 = 3, FULL_FILL = 1, FULL_COPY = 3,
       FULL_RED = 1, FULL_LOSS = 3, FULL_GEMM = 5, FULL_MATVEC = 5 };

#define HG_OP(name, family, sig, n_in, n_par, reduce, min_n, body, final, math)             \
    static hg_status call_##name(uint64_t e, const uint64_t *b, uint64_t n, float lo,      \
                                 float hi, float *r) {                                     \
        (void)e, (void)b, (void)n, (void)lo, (void)hi, (void)r;                            \
        CALL_##sig(name)                                                                   \
    }
#include "canon/ops.def"
#undef HG_OP

typedef struct {
    const char *name;
    op_caller call;
    int n_bufs;       /* 0: no public function */
    int min_n;
    int full;         /* operands that need n elements */
    int has_result;   /* RED/LOSS: last operand receives the scalar */
} op_row;

static const op_row op_table[] = {
#define HG_OP(name, family, sig, n_in, n_par, reduce, min_n, body, final, math)             \
    {#name, call_##name, NB_##sig, min_n, FULL_##sig, CANON_FAM_IS_SCALAR_##family},
#define CANON_FAM_IS_SCALAR_MAP 0
#define CANON_FAM_IS_SCALAR_SOFTMAX 0
#define CANON_FAM_IS_SCALAR_CONTRACT 0
#define CANON_FAM_IS_SCALAR_STRIDED 0
#define CANON_FAM_IS_SCALAR_REDUCE 1
#define CANON_FAM_IS_SCALAR_LOSS 1
#include "canon/ops.def"
#undef HG_OP
};
#define OP_COUNT (sizeof op_table / sizeof op_table[0])

/* ---- handles ------------------------------------------------------------------------- */

static void test_handles(void **state) {
    (void)state;
    uint64_t e = new_executor(), e2 = new_executor(), b = ref_buffer(e, 4);
    uint64_t b2 = ref_buffer(e2, 4), len64 = 0;
    uint32_t len = 0;

    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(0, &len));
    expect_message("zero is never a valid handle");
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(0x1234, &len));
    expect_handle_named(0x1234);
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(b ^ (1ull << 40), &len));
    expect_message("unknown");
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(e, &len));
    expect_handle_named(e);
    expect_message("is an executor, not a buffer");
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_executor_allocate_buffer(b, 4, &len64));
    expect_message("is a buffer, not an executor");
    uint64_t t = 0;
    REF_OK(hg_tensor_from_buffer(b, "[2, 2]", &t));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(t, &len));
    expect_handle_named(t);
    expect_message("is a tensor, not a buffer");
    REF_OK(hg_tensor_cleanup(t));

    /* another executor's buffer */
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_vector_add_f32(e, b, b2, b, 4));
    expect_handle_named(b2);
    expect_message("belongs to executor");

    /* freed handles */
    REF_OK(hg_buffer_cleanup(b));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(b, &len));
    expect_handle_named(b);
    expect_message("was freed");
    /* a new buffer never gets the old handle */
    uint64_t b3 = ref_buffer(e, 4);
    assert_true(b3 != b);
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(b, &len));
    REF_OK(hg_buffer_length(b3, &len));
    assert_int_equal(len, 4);
    REF_OK(hg_executor_cleanup(e));
    REF_OK(hg_executor_cleanup(e2));
}

static void test_double_cleanup(void **state) {
    (void)state;
    uint64_t e = new_executor(), b = ref_buffer(e, 8);
    REF_OK(hg_buffer_cleanup(b));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_cleanup(b));
    expect_handle_named(b);
    REF_OK(hg_executor_cleanup(e));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_executor_cleanup(e));
    expect_handle_named(e);
    expect_message("was freed");
}

static void test_executor_cleanup_scope(void **state) {
    (void)state;
    uint64_t e1 = new_executor(), e2 = new_executor();
    uint64_t a = ref_buffer(e1, 16), bnd = 0, t = 0, keep = ref_buffer(e2, 16);
    REF_OK(hg_executor_allocate_boundary_buffer(e1, 3, 4, 4, &bnd));
    REF_OK(hg_tensor_from_buffer(a, "[4, 4]", &t));
    write_constant(e2, keep, 2.5f, 16);
    REF_OK(hg_executor_cleanup(e1));
    uint32_t len;
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(a, &len));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(bnd, &len));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_tensor_cleanup(t));
    REF_OK(hg_buffer_length(keep, &len));
    assert_int_equal(len, 16);
    assert_true(all_equal(e2, keep, 2.5f, 16));
    REF_OK(hg_executor_cleanup(e2));
}

static void test_busy_buffer(void **state) {
    (void)state;
    uint64_t e = new_executor(), b = ref_buffer(e, 6), t1 = 0, t2 = 0;
    REF_OK(hg_tensor_from_buffer(b, "[6]", &t1));
    REF_OK(hg_tensor_from_buffer(b, "[2, 3]", &t2));
    REF_EXPECT(HG_ERR_BUSY, hg_buffer_cleanup(b));
    expect_message("is viewed by 2 tensors");
    REF_OK(hg_tensor_cleanup(t1));
    REF_OK(hg_tensor_cleanup(t2));
    REF_OK(hg_buffer_cleanup(b));
    REF_OK(hg_executor_cleanup(e));
}

/* hg_buffer_pin: the buffer's own memory; while pinned, freeing the buffer, its executor
 * or everything is BUSY and frees nothing; pins count; bad handles pin nothing. */
static void test_pinned_buffer(void **state) {
    (void)state;
    uint64_t e = new_executor(), other = new_executor(), b = ref_buffer(e, 6), len = 0;
    float *data = NULL, *again = NULL;
    REF_OK(hg_buffer_pin(e, b, &data, &len));
    assert_int_equal(len, 6);
    assert_int_equal((uintptr_t)data % 64, 0);
    data[1] = -4.0f; /* the buffer is the memory */
    REF_OK(hg_vector_abs_f32(e, b, b, 6));
    assert_true(data[1] == 4.0f);
    REF_OK(hg_buffer_pin(e, b, &again, &len));
    assert_ptr_equal(again, data);
    REF_EXPECT(HG_ERR_BUSY, hg_buffer_cleanup(b));
    expect_message("has 2 pins on its memory");
    REF_EXPECT(HG_ERR_BUSY, hg_executor_cleanup(e));
    expect_message("has 2 pins on its buffers' memory");
    REF_EXPECT(HG_ERR_BUSY, hg_clear_all_registries());
    expect_message("nothing freed");
    REF_OK(hg_buffer_unpin(e, b));
    REF_EXPECT(HG_ERR_BUSY, hg_buffer_cleanup(b));
    expect_message("has 1 pin on its memory");
    REF_OK(hg_buffer_unpin(e, b));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_buffer_unpin(e, b));
    expect_message("is not pinned");
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_pin(other, b, &data, &len));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_pin(e, 12345, &data, &len));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_buffer_pin(e, b, NULL, &len));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_buffer_pin(e, b, &data, NULL));
    REF_OK(hg_buffer_cleanup(b)); /* no pin left behind by the failures */
    uint64_t empty;
    REF_OK(hg_executor_allocate_buffer(e, 0, &empty));
    REF_OK(hg_buffer_pin(e, empty, &data, &len));
    assert_non_null(data);
    assert_int_equal(len, 0);
    REF_OK(hg_buffer_unpin(e, empty));
    REF_OK(hg_executor_cleanup(other));
    REF_OK(hg_executor_cleanup(e));
}

/* Pins and unpins from 4 threads at once over one buffer all count. */
typedef struct {
    uint64_t e, b;
    int ok;
} pin_work;

static void *pin_worker(void *arg) {
    pin_work *w = arg;
    float *data;
    uint64_t len;
    w->ok = 1;
    for (int i = 0; i < 20000 && w->ok; i++)
        w->ok = hg_buffer_pin(w->e, w->b, &data, &len) == HG_OK &&
                hg_buffer_unpin(w->e, w->b) == HG_OK;
    return NULL;
}

static void test_pins_from_threads(void **state) {
    (void)state;
    uint64_t e = new_executor(), b = ref_buffer(e, 16), len;
    float *data;
    REF_OK(hg_buffer_pin(e, b, &data, &len));
    pin_work w[4];
    pthread_t tid[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (pin_work){e, b, 0};
        assert_int_equal(pthread_create(&tid[i], NULL, pin_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(tid[i], NULL);
        assert_true(w[i].ok);
    }
    REF_EXPECT(HG_ERR_BUSY, hg_buffer_cleanup(b));
    expect_message("has 1 pin on its memory");
    REF_OK(hg_buffer_unpin(e, b));
    REF_OK(hg_buffer_cleanup(b));
    REF_OK(hg_executor_cleanup(e));
}

/* ---- buffers --------------------------------------------------------------------------- */

/* Checks all eight properties of `b`. */
static void expect_properties(uint64_t b, uint32_t length, int boundary, uint8_t cls) {
    uint32_t u32;
    uint8_t u8;
    const char *pool;
    REF_OK(hg_buffer_length(b, &u32));
    assert_int_equal(u32, length);
    REF_OK(hg_buffer_is_empty(b, &u8));
    assert_int_equal(u8, length == 0);
    REF_OK(hg_buffer_is_linear(b, &u8));
    assert_int_equal(u8, !boundary);
    REF_OK(hg_buffer_is_boundary(b, &u8));
    assert_int_equal(u8, boundary);
    REF_OK(hg_buffer_pool(b, &pool));
    assert_string_equal(pool, boundary ? "Boundary" : "Linear");
    REF_OK(hg_buffer_element_size(b, &u32));
    assert_int_equal(u32, 4);
    REF_OK(hg_buffer_size_bytes(b, &u32));
    assert_int_equal(u32, 4 * length);
    REF_OK(hg_buffer_class_index(b, &u8));
    assert_int_equal(u8, cls);
}

static void test_buffer_properties(void **state) {
    (void)state;
    uint64_t e = new_executor(), b = 0;
    expect_properties(ref_buffer(e, 10), 10, 0, 0);
    expect_properties(ref_buffer(e, 0), 0, 0, 0);
    REF_OK(hg_executor_allocate_boundary_buffer(e, 0, 16, 16, &b));
    expect_properties(b, 64, 1, 0);
    REF_OK(hg_executor_allocate_boundary_buffer(e, 95, 48, 256, &b));
    expect_properties(b, 3072, 1, 95);
    REF_OK(hg_executor_allocate_boundary_buffer(e, 42, 1, 4, &b));
    expect_properties(b, 1, 1, 42);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_buffer_length(b, NULL));
    REF_OK(hg_executor_cleanup(e));
}

static void test_boundary_geometry(void **state) {
    (void)state;
    uint64_t e = new_executor(), b = 0;
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_executor_allocate_boundary_buffer(e, 96, 1, 4, &b));
    expect_message("96");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_executor_allocate_boundary_buffer(e, 0, 0, 4, &b));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_executor_allocate_boundary_buffer(e, 0, 49, 4, &b));
    expect_message("49");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_executor_allocate_boundary_buffer(e, 0, 1, 0, &b));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_executor_allocate_boundary_buffer(e, 0, 1, 257, &b));
    expect_message("257");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_executor_allocate_boundary_buffer(e, 0, 3, 5, &b));
    expect_message("15");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT,
               hg_executor_allocate_boundary_buffer(e, 1ull << 40, 1, 4, &b));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_executor_allocate_boundary_buffer(0, 0, 1, 4, &b));
    assert_int_equal(b, 0);
    REF_OK(hg_executor_cleanup(e));
}

static void test_boundary_sharing(void **state) {
    (void)state;
    uint64_t e = new_executor(), a = 0, b = 0, other = 0;
    REF_OK(hg_executor_allocate_boundary_buffer(e, 7, 16, 16, &a));   /* 64 floats */
    REF_OK(hg_executor_allocate_boundary_buffer(e, 8, 48, 256, &other));
    write_constant(e, other, -1.0f, 3072);
    float v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (float)i;
    ref_write(e, a, v, 64);
    REF_OK(hg_executor_allocate_boundary_buffer(e, 7, 48, 256, &b)); /* zero-fills 3072 */
    assert_true(all_equal(e, a, 0.0f, 64));
    ref_write(e, a, v, 64);
    float w[64];
    ref_read(e, b, w, 64); /* b sees a's writes: one class, one region */
    for (int i = 0; i < 64; i++)
        assert_true(ref_same(w[i], v[i]));
    assert_true(all_equal(e, other, -1.0f, 3072)); /* other classes untouched */
    /* copy between buffers of one class is a copy onto itself */
    REF_OK(hg_buffer_copy(e, a, b, 64));
    ref_read(e, b, w, 64);
    for (int i = 0; i < 64; i++)
        assert_true(ref_same(w[i], v[i]));
    REF_OK(hg_executor_cleanup(e));
}

static void test_zero_filled_and_lengths(void **state) {
    (void)state;
    uint64_t e = new_executor(), b = 0;
    for (uint64_t n = 0; n < 2000; n = n * 3 + 1) {
        b = ref_buffer(e, n);
        assert_true(all_equal(e, b, 0.0f, n));
        write_constant(e, b, 7.0f, n);
        REF_OK(hg_buffer_cleanup(b));
        b = ref_buffer(e, n);
        assert_true(all_equal(e, b, 0.0f, n));
        REF_OK(hg_buffer_cleanup(b));
    }
    b = 0;
    REF_EXPECT(HG_ERR_NO_MEMORY,
               hg_executor_allocate_buffer(e, (uint64_t)HG_MAX_BUFFER_LENGTH + 1, &b));
    expect_message("1073741824");
    expect_message("1073741823");
    REF_EXPECT(HG_ERR_NO_MEMORY, hg_executor_allocate_buffer(e, UINT64_MAX, &b));
    assert_int_equal(b, 0);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_executor_allocate_buffer(e, 4, NULL));
    REF_OK(hg_executor_cleanup(e));
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_memory_reuse(void **state) {
    (void)state;
    const uint64_t n = 4u << 20;
    uint64_t e = new_executor();
    float *ones = ref_alloc(n * sizeof *ones);
    for (uint64_t i = 0; i < n; i++)
        ones[i] = 1.0f;
    double first = 0, later = 0;
    for (int round = 0; round < 4; round++) {
        double t0 = seconds_now();
        uint64_t b = ref_buffer(e, n);
        ref_write(e, b, ones, n); /* touches every page of the buffer */
        double t1 = seconds_now();
        if (round == 0)
            first = t1 - t0;
        else
            later += (t1 - t0) / 3;
        REF_OK(hg_buffer_cleanup(b));
        b = ref_buffer(e, n);
        assert_true(all_equal(e, b, 0.0f, n));
        REF_OK(hg_buffer_cleanup(b));
    }
    free(ones);
    print_message("4M-float allocate+write: first %.2f ms, reused %.2f ms\n", first * 1e3,
                  later * 1e3);
    REF_OK(hg_executor_cleanup(e));
}

/* An executor's cleanup costs O(what it owns): after one executor held 1M buffers (and
 * tensors), a new executor and its cleanup cost what they cost in a fresh process (about
 * 0.05 us here; 1.5 ms when cleanup scanned every slot ever used).  The bound, 20 us per
 * cycle, leaves room for a loaded machine and none for a scan of 1M slots. */
static void test_cleanup_cost_after_many_handles(void **state) {
    (void)state;
    const int many = 1000000, cycles = 2000;
    uint64_t e = new_executor(), b = 0, t = 0, other = new_executor();
    uint64_t kept = ref_buffer(other, 4);
    for (int i = 0; i < many; i++) {
        REF_OK(hg_executor_allocate_buffer(e, 1, &b));
        if (i % 8 == 0)
            REF_OK(hg_tensor_from_buffer(b, "[1]", &t));
    }
    double t0 = seconds_now();
    REF_OK(hg_executor_cleanup(e));
    double big = seconds_now() - t0;
    uint32_t len;
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(b, &len));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_tensor_cleanup(t));
    REF_OK(hg_buffer_length(kept, &len)); /* another executor's buffer stays */
    t0 = seconds_now();
    for (int i = 0; i < cycles; i++) {
        REF_OK(hg_new_executor(&e));
        REF_OK(hg_executor_cleanup(e));
    }
    double each = (seconds_now() - t0) / cycles;
    print_message("executor_cleanup of 1.125M handles %.1f ms; then new_executor + cleanup "
                  "%.3f us\n", big * 1e3, each * 1e6);
    assert_true(each < 20e-6);
    REF_OK(hg_executor_cleanup(other));
}

static void test_transfer(void **state) {
    (void)state;
    uint64_t e = new_executor(), e2 = new_executor(), b = ref_buffer(e, 4);
    float v[5] = {1, 2, 3, 4, 5};
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, hg_buffer_write(e, b, v, 5));
    expect_message("n = 5 exceeds buffer");
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, hg_buffer_read(e, b, v, 5));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_buffer_write(e, b, NULL, 1));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_buffer_read(e, b, NULL, 1));
    REF_OK(hg_buffer_write(e, b, NULL, 0));
    REF_OK(hg_buffer_read(e, b, NULL, 0));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_write(e2, b, v, 1));
    expect_message("belongs to executor");

    REF_OK(hg_buffer_copy_from_slice(e, b, "[1.5, -2, NaN]"));
    char *json = NULL;
    REF_OK(hg_buffer_to_vec(e, b, &json));
    assert_non_null(json);
    assert_non_null(strstr(json, "1.5"));
    assert_non_null(strstr(json, "NaN"));
    hg_free_string(json);
    hg_free_string(NULL);
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, hg_buffer_copy_from_slice(e, b, "[9, 9, 9, 9, 9]"));
    expect_message("JSON array has 5 elements");
    REF_EXPECT(HG_ERR_JSON, hg_buffer_copy_from_slice(e, b, "[9, 9, oops]"));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_buffer_copy_from_slice(e, b, NULL));
    float w[4];
    ref_read(e, b, w, 4);
    assert_true(w[0] == 1.5f && w[1] == -2.0f && isnan(w[2]) && w[3] == 0.0f);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_buffer_to_vec(e, b, NULL));
    REF_OK(hg_executor_cleanup(e));
    REF_OK(hg_executor_cleanup(e2));
}

/* ---- op argument checks (every op from the table) -------------------------------------- */

#define LEN 8

static void test_ops_out_of_bounds(void **state) {
    (void)state;
    uint64_t e = new_executor();
    for (size_t i = 0; i < OP_COUNT; i++) {
        const op_row *op = &op_table[i];
        if (!op->n_bufs)
            continue;
        /* each operand in turn is the short one (LEN - 1 elements) */
        for (int shortest = 0; shortest < op->n_bufs; shortest++) {
            uint64_t b[4];
            for (int j = 0; j < op->n_bufs; j++) {
                b[j] = ref_buffer(e, j == shortest ? LEN - 1 : LEN);
                write_constant(e, b[j], 0.25f, j == shortest ? LEN - 1 : LEN);
            }
            /* operands that need 1 element only: n = LEN still fits */
            if (!(op->full >> shortest & 1)) {
                float r = 0;
                REF_OK(op->call(e, b, LEN, 0.0f, 1.0f, &r));
            } else {
                float r = 123.0f;
                hg_status st = op->call(e, b, LEN, 0.0f, 1.0f, &r);
                if (st != HG_ERR_OUT_OF_BOUNDS)
                    fail_msg("%s with operand %d short: status %d, \"%s\"", op->name,
                             shortest, (int)st, hg_last_error());
                expect_handle_named(b[shortest]);
                assert_true(r == 123.0f);
                int last = op->n_bufs - 1;
                assert_true(all_equal(e, b[last], 0.25f, last == shortest ? LEN - 1 : LEN));
            }
            for (int j = 0; j < op->n_bufs; j++)
                REF_OK(hg_buffer_cleanup(b[j]));
        }
        /* n far past every end, and an out buffer of 0 elements */
        uint64_t b[4];
        for (int j = 0; j < op->n_bufs; j++)
            b[j] = ref_buffer(e, LEN);
        float r;
        REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, op->call(e, b, UINT64_MAX / 2, 0.0f, 1.0f, &r));
        if (op->has_result) {
            uint64_t good = b[op->n_bufs - 1];
            b[op->n_bufs - 1] = ref_buffer(e, 0);
            REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, op->call(e, b, 2, 0.0f, 1.0f, &r));
            expect_message("(out) holds 0 elements, needs 1");
            b[op->n_bufs - 1] = good;
            REF_EXPECT(HG_ERR_INVALID_ARGUMENT, op->call(e, b, 2, 0.0f, 1.0f, NULL));
        }
        /* bad executor handle */
        REF_EXPECT(HG_ERR_INVALID_HANDLE, op->call(0, b, 2, 0.0f, 1.0f, &r));
    }
    REF_OK(hg_executor_cleanup(e));
}

static void test_ops_min_n_and_bounds(void **state) {
    (void)state;
    uint64_t e = new_executor();
    uint64_t b[4] = {ref_buffer(e, LEN), ref_buffer(e, LEN), ref_buffer(e, LEN),
                     ref_buffer(e, LEN)};
    int checked = 0;
    for (size_t i = 0; i < OP_COUNT; i++) {
        const op_row *op = &op_table[i];
        if (!op->n_bufs)
            continue;
        float r = 0;
        if (op->min_n > 0) {
            REF_EXPECT(HG_ERR_INVALID_ARGUMENT, op->call(e, b, 0, 0.0f, 1.0f, &r));
            char want[96];
            snprintf(want, sizeof want, "%s needs n >= 1, got 0", op->name);
            expect_message(want);
            checked++;
        } else {
            REF_OK(op->call(e, b, 0, 0.0f, 1.0f, &r));
        }
    }
    assert_true(checked >= 6); /* softmax, reduce min/max, three losses */
    write_constant(e, b[1], 5.0f, LEN);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_vector_clip_f32(e, b[0], b[1], LEN, 2.0f, 1.0f));
    expect_message("lo = 2, hi = 1");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_vector_clip_f32(e, b[0], b[1], LEN, NAN, 1.0f));
    expect_message("nan");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_vector_clip_f32(e, b[0], b[1], LEN, 0.0f, NAN));
    assert_true(all_equal(e, b[1], 5.0f, LEN));
    REF_OK(hg_vector_clip_f32(e, b[0], b[1], LEN, 1.0f, 1.0f));
    assert_true(all_equal(e, b[1], 1.0f, LEN));
    REF_OK(hg_executor_cleanup(e));
}

static void test_scalar_results(void **state) {
    (void)state;
    uint64_t e = new_executor(), x = ref_buffer(e, 5), t = ref_buffer(e, 5);
    uint64_t out = ref_buffer(e, 1);
    float xv[5] = {1, 2, 3, 4, 5}, tv[5] = {0, 2, 2, 6, 5}, r = 0, o = 0;
    ref_write(e, x, xv, 5);
    ref_write(e, t, tv, 5);
    REF_OK(hg_reduce_sum_f32(e, x, out, 5, &r));
    ref_read(e, out, &o, 1);
    assert_true(r == 15.0f && o == 15.0f);
    REF_OK(hg_reduce_max_f32(e, x, out, 5, &r));
    assert_true(r == 5.0f);
    REF_OK(hg_reduce_sum_f32(e, x, out, 0, &r));
    assert_true(r == 0.0f);
    REF_OK(hg_mse_loss_f32(e, x, t, out, 5, &r));
    double mse = 0;
    for (int i = 0; i < 5; i++)
        mse += ((double)xv[i] - tv[i]) * ((double)xv[i] - tv[i]) / 5;
    ref_read(e, out, &o, 1);
    assert_true(fabs(r - mse) <= 1e-6 * mse && o == r);
    REF_OK(hg_executor_cleanup(e));
}

static void test_contractions(void **state) {
    (void)state;
    enum { M = 5, K = 7, N = 3 };
    uint64_t e = new_executor(), a = ref_buffer(e, M * K), b = ref_buffer(e, K * N);
    uint64_t c = ref_buffer(e, M * N), x = ref_buffer(e, K), y = ref_buffer(e, M);
    float av[M * K], bv[K * N], cv[M * N], yv[M];
    uint64_t seed = 42;
    for (int i = 0; i < M * K; i++)
        av[i] = (float)(ref_uniform(&seed) * 2 - 1);
    for (int i = 0; i < K * N; i++)
        bv[i] = (float)(ref_uniform(&seed) * 2 - 1);
    ref_write(e, a, av, M * K);
    ref_write(e, b, bv, K * N);
    ref_write(e, x, bv, K);
    REF_OK(hg_gemm_f32(e, a, b, c, M, N, K));
    ref_read(e, c, cv, M * N);
    REF_OK(hg_matvec_f32(e, a, x, y, M, K));
    ref_read(e, y, yv, M);
    for (int i = 0; i < M; i++) {
        double s = 0;
        for (int p = 0; p < K; p++)
            s += (double)av[i * K + p] * bv[p];
        assert_true(fabs(yv[i] - s) <= 1e-5 * K);
        for (int j = 0; j < N; j++) {
            s = 0;
            for (int p = 0; p < K; p++)
                s += (double)av[i * K + p] * bv[p * N + j];
            assert_true(fabs(cv[i * N + j] - s) <= 1e-5 * K);
        }
    }
    /* aliasing and sizes */
    uint64_t sq = ref_buffer(e, 16), sq2 = ref_buffer(e, 16);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_gemm_f32(e, sq, sq2, sq, 4, 4, 4));
    expect_message("overlaps");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_gemm_f32(e, sq, sq2, sq2, 4, 4, 4));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_matvec_f32(e, sq, sq2, sq2, 4, 4));
    uint64_t ba = 0, bb = 0;
    REF_OK(hg_executor_allocate_boundary_buffer(e, 11, 16, 16, &ba));
    REF_OK(hg_executor_allocate_boundary_buffer(e, 11, 16, 16, &bb));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_gemm_f32(e, ba, sq2, bb, 4, 4, 4));
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_gemm_f32(e, sq, sq2, c, 1ull << 40, 1ull << 40, 4));
    expect_message("overflow");
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, hg_gemm_f32(e, sq, sq2, c, 4, 4, 5));
    expect_message("(A, m*k) holds 16 elements, needs 20");
    REF_OK(hg_executor_cleanup(e));
}

static void test_fill_copy(void **state) {
    (void)state;
    uint64_t e = new_executor(), a = ref_buffer(e, 100), b = ref_buffer(e, 100);
    REF_OK(hg_buffer_fill(e, a, 3.0f, 60));
    assert_true(all_equal(e, a, 3.0f, 60));
    float v[100];
    ref_read(e, a, v, 100);
    assert_true(v[60] == 0.0f && v[99] == 0.0f);
    REF_OK(hg_buffer_copy(e, a, b, 100));
    ref_read(e, b, v, 100);
    assert_true(v[59] == 3.0f && v[60] == 0.0f);
    REF_OK(hg_buffer_copy(e, a, a, 100)); /* onto itself: unchanged */
    assert_true(all_equal(e, a, 3.0f, 60));
    REF_EXPECT(HG_ERR_OUT_OF_BOUNDS, hg_buffer_fill(e, a, 1.0f, 101));
    assert_true(all_equal(e, a, 3.0f, 60));
    REF_OK(hg_executor_cleanup(e));
}

/* ---- engine ----------------------------------------------------------------------------- */

static void test_backend_and_stats(void **state) {
    (void)state;
    const char *name = NULL;
    REF_OK(hg_get_backend(&name));
    assert_non_null(name);
    REF_OK(hg_set_backend("interp"));
    REF_OK(hg_get_backend(&name));
    assert_string_equal(name, "interp");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_set_backend("jti"));
    expect_message("jti");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_set_backend(NULL));
    REF_OK(hg_get_backend(&name));
    assert_string_equal(name, "interp");
    hg_status jit = hg_set_backend("jit");
    assert_true(jit == HG_OK || jit == HG_ERR_INVALID_ARGUMENT);

    uint64_t e = new_executor(), a = ref_buffer(e, 33), c = ref_buffer(e, 33);
    write_constant(e, a, 2.0f, 33);
    REF_OK(hg_scalar_mul_f32(e, a, c, 33, 1.5f));
    assert_true(all_equal(e, c, 3.0f, 33));
    hg_cache_stats st;
    REF_OK(hg_cache_stats_get(&st));
    if (jit == HG_OK)
        assert_true(st.hits + st.misses + st.fallbacks >= 1);
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_cache_stats_get(NULL));
    REF_OK(hg_cache_reset());
    REF_OK(hg_cache_stats_get(&st));
    assert_int_equal(st.fallbacks, 0);
    REF_OK(hg_executor_cleanup(e));
}

/* HOLOGRAM_BACKEND is read once per process, so a child process checks that a typo makes
 * every op fail (naming the value) until hg_set_backend picks a valid backend.  Must run
 * before this process's first op (the child inherits the read-once state). */
static void test_backend_environment(void **state) {
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("HOLOGRAM_BACKEND", "jitt", 1);
        uint64_t e, a;
        const char *name;
        int ok = hg_new_executor(&e) == HG_OK && hg_executor_allocate_buffer(e, 4, &a) == HG_OK;
        ok = ok && hg_vector_abs_f32(e, a, a, 4) == HG_ERR_INVALID_ARGUMENT;
        ok = ok && strstr(hg_last_error(), "\"jitt\"") != NULL;
        ok = ok && hg_get_backend(&name) == HG_ERR_INVALID_ARGUMENT;
        ok = ok && hg_set_backend("interp") == HG_OK;
        ok = ok && hg_vector_abs_f32(e, a, a, 4) == HG_OK;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* HOLOGRAM_THREADS is read once per process too: in a child, a value that is not an integer
 * from 1 to RT_PAR_MAX_THREADS makes every op fail naming it; a valid value works.  Must
 * run before this process's first op. */
static void test_threads_environment(void **state) {
    (void)state;
    const char *values[] = {"two", "0", "-3", "257", "2"};
    for (int v = 0; v < 5; v++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            setenv("HOLOGRAM_THREADS", values[v], 1);
            uint64_t e = 0, a = 0;
            int ok = hg_new_executor(&e) == HG_OK &&
                     hg_executor_allocate_buffer(e, 4, &a) == HG_OK;
            hg_status st = hg_vector_abs_f32(e, a, a, 4);
            if (v < 4)
                ok = ok && st == HG_ERR_INVALID_ARGUMENT &&
                     strstr(hg_last_error(), values[v]) != NULL;
            else
                ok = ok && st == HG_OK;
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

/* Every HOLOGRAM_* knob read once per process, in a child per value: a bad value (0, -5,
 * abc, absurdly large, or what the knob cannot take) makes every op fail with
 * INVALID_ARGUMENT naming the variable and the value, and changes no buffer; "" is unset.
 * Must run before this process's first op. */
static void test_knob_environment(void **state) {
    (void)state;
    static const struct {
        const char *name, *value;
        int bad; /* 1: refused (a JIT knob: only when the build has the JIT) */
    } cases[] = {
        {"HOLOGRAM_CACHE_ENTRIES", "0", 1},
        {"HOLOGRAM_CACHE_ENTRIES", "-5", 1},
        {"HOLOGRAM_CACHE_ENTRIES", "abc", 1},
        {"HOLOGRAM_CACHE_ENTRIES", "18446744073709551611", 1},
        {"HOLOGRAM_CACHE_ENTRIES", "", 0},
        {"HOLOGRAM_CACHE_ENTRIES", "64", 0},
        {"HOLOGRAM_CACHE_DISK_FILES", "0", 1},
        {"HOLOGRAM_CACHE_DISK_FILES", "-5", 1},
        {"HOLOGRAM_CACHE_DISK_FILES", "abc", 1},
        {"HOLOGRAM_CACHE_DISK_FILES", "99999999999999999999", 1},
        {"HOLOGRAM_CACHE_DISK_FILES", "", 0},
        {"HOLOGRAM_CACHE_DIR", "relative/dir", 1},
        {"HOLOGRAM_CACHE_DIR", "Off", 1},
        {"HOLOGRAM_JIT_HASH_BITS", "0", 1},
        {"HOLOGRAM_JIT_HASH_BITS", "64", 1},
        {"HOLOGRAM_JIT_HASH_BITS", "abc", 1},
        {"HOLOGRAM_DUMP", "irr", 1},
        {"HOLOGRAM_DUMP", "0", 1},
        {"HOLOGRAM_DUMP", "", 0},
        {"HOLOGRAM_BACKEND", "-5", 1},
        {"HOLOGRAM_BACKEND", "", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            setenv(cases[c].name, cases[c].value, 1);
            uint64_t e = 0, a = 0;
            float x = -2.0f;
            int ok = hg_new_executor(&e) == HG_OK &&
                     hg_executor_allocate_buffer(e, 1, &a) == HG_OK &&
                     hg_buffer_copy_from_slice(e, a, "[-2]") == HG_OK;
            hg_status st = hg_vector_abs_f32(e, a, a, 1);
            char got[512], want[160];
            snprintf(got, sizeof got, "%s", hg_last_error());
            snprintf(want, sizeof want, "%s=\"%s\"", cases[c].name, cases[c].value);
            hg_cache_stats cs;
            int jit = hg_cache_stats_get(&cs) == HG_OK && cs.capacity > 0;
            int bad = cases[c].bad && (jit || strncmp(cases[c].name, "HOLOGRAM_CACHE", 14) != 0) &&
                      (jit || strcmp(cases[c].name, "HOLOGRAM_JIT_HASH_BITS") != 0);
            if (bad)
                ok = ok && st == HG_ERR_INVALID_ARGUMENT && strncmp(got, want, strlen(want)) == 0;
            else
                ok = ok && st == HG_OK;
            char *json = NULL;
            ok = ok && hg_buffer_to_vec(e, a, &json) == HG_OK &&
                 sscanf(json, "[%f]", &x) == 1 && x == (bad ? -2.0f : 2.0f);
            hg_free_string(json);
            if (!ok)
                fprintf(stderr, "%s: status %d, \"%s\", x = %g\n", want, st, got, x);
            _exit(ok ? 0 : 1);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

static void test_status_and_last_error(void **state) {
    (void)state;
    assert_string_equal(hg_status_string(HG_OK), "ok");
    assert_string_equal(hg_status_string(HG_ERR_BUSY), "buffer in use");
    assert_string_equal(hg_status_string((hg_status)99), "unknown status");
    const char *v = NULL;
    REF_OK(hg_get_version(&v));
    assert_string_equal(v, HOLOGRAM_VERSION_STRING);
    uint32_t len;
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(0, &len));
    assert_true(hg_last_error()[0] != '\0');
    uint64_t e = new_executor();
    assert_string_equal(hg_last_error(), "");
    REF_EXPECT(HG_ERR_INVALID_ARGUMENT, hg_get_version(NULL));
    REF_OK(hg_get_version(&v));
    assert_string_equal(hg_last_error(), "");
    REF_OK(hg_executor_cleanup(e));
}

/* ---- threads ---------------------------------------------------------------------------- */

enum { THREADS = 8, ROUNDS = 40 };

typedef struct {
    uint64_t shared;  /* an executor all threads use */
    int id;
    int errors;       /* failed calls */
    int wrong;        /* wrong results */
    char first[256];  /* first failure */
} worker;

/* Records a failed call (no CMocka calls off the main thread). */
static int worker_check(worker *w, hg_status st, const char *what) {
    if (st == HG_OK)
        return 1;
    if (!w->errors++)
        snprintf(w->first, sizeof w->first, "%s: %s", what, hg_last_error());
    return 0;
}

/* One round on executor `e`: c = a + b and sum(c), checked against double loops. */
static void worker_round(worker *w, uint64_t e, uint64_t n) {
    uint64_t a, b, c, out;
    if (!worker_check(w, hg_executor_allocate_buffer(e, n, &a), "alloc a") ||
        !worker_check(w, hg_executor_allocate_buffer(e, n, &b), "alloc b") ||
        !worker_check(w, hg_executor_allocate_buffer(e, n, &c), "alloc c") ||
        !worker_check(w, hg_executor_allocate_buffer(e, 1, &out), "alloc out"))
        return;
    float *v = malloc(2 * n * sizeof *v);
    double want = 0;
    for (uint64_t i = 0; i < n; i++) {
        v[i] = (float)(w->id * 1000 + (int)(i % 977));
        v[n + i] = (float)(i % 13);
        want += (double)(v[i] + v[n + i]);
    }
    float r = 0;
    if (worker_check(w, hg_buffer_write(e, a, v, n), "write a") &&
        worker_check(w, hg_buffer_write(e, b, v + n, n), "write b") &&
        worker_check(w, hg_vector_add_f32(e, a, b, c, n), "add") &&
        worker_check(w, hg_reduce_sum_f32(e, c, out, n, &r), "sum") &&
        worker_check(w, hg_buffer_read(e, c, v, n), "read c")) {
        for (uint64_t i = 0; i < n; i++)
            w->wrong += v[i] != (float)(w->id * 1000 + (int)(i % 977)) + (float)(i % 13);
        w->wrong += fabs(r - want) > 1e-6 * want * 20;
    }
    free(v);
    worker_check(w, hg_buffer_cleanup(a), "free a");
    worker_check(w, hg_buffer_cleanup(b), "free b");
    worker_check(w, hg_buffer_cleanup(c), "free c");
    worker_check(w, hg_buffer_cleanup(out), "free out");
}

static void *worker_main(void *arg) {
    worker *w = arg;
    uint64_t own;
    if (!worker_check(w, hg_new_executor(&own), "new executor"))
        return NULL;
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t n = 1 + (uint64_t)((round * 7919 + w->id * 104729) % 5000);
        worker_round(w, own, n);
        worker_round(w, w->shared, n / 2 + 1);
    }
    worker_check(w, hg_executor_cleanup(own), "executor cleanup");
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    pthread_t tid[THREADS];
    worker w[THREADS];
    uint64_t shared = new_executor();
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.shared = shared, .id = i};
        assert_int_equal(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        if (w[i].errors || w[i].wrong)
            fail_msg("thread %d: %d errors, %d wrong results; first: %s", i, w[i].errors,
                     w[i].wrong, w[i].first);
    }
    REF_OK(hg_executor_cleanup(shared));
}

static void test_clear_all(void **state) {
    (void)state;
    uint64_t e1 = new_executor(), e2 = new_executor(), b = ref_buffer(e2, 100), t = 0;
    REF_OK(hg_tensor_from_buffer(b, "[10, 10]", &t));
    REF_OK(hg_clear_all_registries());
    uint32_t len;
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_buffer_length(b, &len));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_executor_cleanup(e1));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_executor_cleanup(e2));
    REF_EXPECT(HG_ERR_INVALID_HANDLE, hg_tensor_cleanup(t));
    uint64_t e3 = new_executor();
    assert_true(e3 != e1 && e3 != e2);
    REF_OK(hg_executor_cleanup(e3));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_environment),
        cmocka_unit_test(test_threads_environment),
        cmocka_unit_test(test_knob_environment),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_double_cleanup),
        cmocka_unit_test(test_executor_cleanup_scope),
        cmocka_unit_test(test_cleanup_cost_after_many_handles),
        cmocka_unit_test(test_busy_buffer),
        cmocka_unit_test(test_pinned_buffer),
        cmocka_unit_test(test_pins_from_threads),
        cmocka_unit_test(test_buffer_properties),
        cmocka_unit_test(test_boundary_geometry),
        cmocka_unit_test(test_boundary_sharing),
        cmocka_unit_test(test_zero_filled_and_lengths),
        cmocka_unit_test(test_memory_reuse),
        cmocka_unit_test(test_transfer),
        cmocka_unit_test(test_ops_out_of_bounds),
        cmocka_unit_test(test_ops_min_n_and_bounds),
        cmocka_unit_test(test_scalar_results),
        cmocka_unit_test(test_contractions),
        cmocka_unit_test(test_fill_copy),
        cmocka_unit_test(test_backend_and_stats),
        cmocka_unit_test(test_status_and_last_error),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_clear_all),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    hg_clear_all_registries();
    return failed;
}
