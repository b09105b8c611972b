/* An installed hologram's consumer: adds two buffers and runs an expression, checks the
 * values, prints "consumer ok <version> <backend>"; exit status 1 on any failure. */
#include <stdio.h>
#include <string.h>

#include <hologram/hologram.h>

#define CHECK(call)                                                                       \
    do {                                                                                  \
        if ((call) != HG_OK) {                                                            \
            fprintf(stderr, "%s: %s\n", #call, hg_last_error());                          \
            return 1;                                                                     \
        }                                                                                 \
    } while (0)

int main(void) {
    uint64_t exec, a, b, c, expr;
    const char *version, *backend;
    char *json;
    CHECK(hg_get_version(&version));
    CHECK(hg_get_backend(&backend));
    CHECK(hg_new_executor(&exec));
    CHECK(hg_executor_allocate_buffer(exec, 4, &a));
    CHECK(hg_executor_allocate_buffer(exec, 4, &b));
    CHECK(hg_executor_allocate_buffer(exec, 4, &c));
    CHECK(hg_buffer_copy_from_slice(exec, a, "[1, 2, 3, 4]"));
    CHECK(hg_buffer_copy_from_slice(exec, b, "[10, 20, 30, 40]"));
    CHECK(hg_vector_add_f32(exec, a, b, c, 4));
    CHECK(hg_buffer_to_vec(exec, c, &json));
    int ok = strcmp(json, "[11.0, 22.0, 33.0, 44.0]") == 0;
    if (!ok)
        fprintf(stderr, "vector_add_f32 gave %s\n", json);
    hg_free_string(json);
    CHECK(hg_expr_compile("a*w + b", "[\"w\"]", &expr));
    const uint64_t in[2] = {a, b};
    const float w = 0.5f;
    CHECK(hg_expr_run(exec, expr, in, 2, &w, 1, c, 4, NULL));
    CHECK(hg_buffer_to_vec(exec, c, &json));
    if (strcmp(json, "[10.5, 21.0, 31.5, 42.0]") != 0) {
        fprintf(stderr, "a*w + b gave %s\n", json);
        ok = 0;
    }
    hg_free_string(json);
    CHECK(hg_expr_cleanup(expr));
    CHECK(hg_executor_cleanup(exec));
    if (!ok)
        return 1;
    printf("consumer ok %s %s\n", version, backend);
    return 0;
}
