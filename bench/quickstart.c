/*
 * bench/quickstart.c — the seed README's Quick Start, in C: create an executor, fill two
 * 1024-element buffers through JSON, add them, read the result back as JSON; then the
 * README's expression, a*w + b with a scalar w, as one kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hologram/hologram.h>

#define CHECK(call)                                                                       \
    do {                                                                                  \
        hg_status s_ = (call);                                                            \
        if (s_ != HG_OK) {                                                                \
            fprintf(stderr, "%s failed: %s: %s\n", #call, hg_status_string(s_),           \
                    hg_last_error());                                                     \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* A JSON array of i * scale for i < n (caller frees). */
static char *json_ramp(int n, int scale) {
    char *s = malloc((size_t)n * 16 + 3);
    if (!s) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    size_t at = 0;
    s[at++] = '[';
    for (int i = 0; i < n; i++)
        at += (size_t)sprintf(s + at, "%s%d.0", i ? ", " : "", i * scale);
    s[at++] = ']';
    s[at] = '\0';
    return s;
}

int main(void) {
    const char *version = NULL, *backend = NULL;
    CHECK(hg_get_version(&version));
    CHECK(hg_get_backend(&backend));
    printf("Hologram Version: %s (backend: %s)\n", version, backend);

    uint64_t exec, a, b, c;
    const int size = 1024;
    CHECK(hg_new_executor(&exec));
    CHECK(hg_executor_allocate_buffer(exec, size, &a));
    CHECK(hg_executor_allocate_buffer(exec, size, &b));
    CHECK(hg_executor_allocate_buffer(exec, size, &c));

    char *data_a = json_ramp(size, 1), *data_b = json_ramp(size, 2);
    CHECK(hg_buffer_copy_from_slice(exec, a, data_a));
    CHECK(hg_buffer_copy_from_slice(exec, b, data_b));
    free(data_a);
    free(data_b);

    CHECK(hg_vector_add_f32(exec, a, b, c, size));

    char *result = NULL;
    CHECK(hg_buffer_to_vec(exec, c, &result));
    /* print the first 10 elements of the JSON array */
    int commas = 0;
    size_t cut = 0;
    while (result[cut] && commas < 10)
        if (result[cut++] == ',')
            commas++;
    printf("First 10 results: %.*s]\n", (int)(cut ? cut - 1 : 0), result);
    hg_free_string(result);

    float sum = 0;
    CHECK(hg_reduce_sum_f32(exec, c, a, size, &sum));
    printf("Sum of all %d results: %.1f (expected %.1f)\n", size, sum, 3.0 * size * (size - 1) / 2);

    uint64_t expr;
    CHECK(hg_expr_compile("a*w + b", "[\"w\"]", &expr)); /* w: a scalar parameter */
    const uint64_t in[2] = {b, c};                        /* arrays in order of appearance */
    const float w = 0.5f;
    CHECK(hg_expr_run(exec, expr, in, 2, &w, 1, a, size, NULL)); /* a = b*0.5 + c */
    float check[4];
    CHECK(hg_buffer_read(exec, a, check, 4));
    printf("a*w + b with w = 0.5: %.1f %.1f %.1f %.1f (expected 0.0 4.0 8.0 12.0)\n",
           (double)check[0], (double)check[1], (double)check[2], (double)check[3]);
    CHECK(hg_expr_cleanup(expr));

    CHECK(hg_buffer_cleanup(a));
    CHECK(hg_buffer_cleanup(b));
    CHECK(hg_buffer_cleanup(c));
    CHECK(hg_executor_cleanup(exec));
    return 0;
}
