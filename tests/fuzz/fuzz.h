/*
 * tests/fuzz/fuzz.h — what every fuzz target of tests/fuzz shares: the libFuzzer entry
 * point, invariant checks that print and abort (so libFuzzer keeps the input), an
 * allocator that aborts instead of failing, and a reader of the input's bytes.
 * Include it once, from the target's .c file, after defining FZ_TARGET (its name).
 */
#ifndef HG_FUZZ_H
#define HG_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hologram/hologram.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The text under test (the part of the input a message should show), or "". */
static const char *fz_text = "";

/* Prints the broken invariant with the input text and aborts. */
static void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, FZ_TARGET ": invariant broken: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n" FZ_TARGET ": text \"%.300s%s\"\n", fz_text,
            strlen(fz_text) > 300 ? "..." : "");
    abort();
}

#define FZ_CHECK(cond, ...)                                                                  \
    do {                                                                                     \
        if (!(cond))                                                                         \
            fz_fail(__VA_ARGS__);                                                            \
    } while (0)

/* malloc of at least one byte that aborts instead of returning NULL. */
static inline void *fz_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    FZ_CHECK(p, "the fuzzer itself ran out of memory (%zu bytes)", bytes);
    return p;
}

/* Picks the interpreter, once: the fuzz build has no JIT, and the replay of the normal
 * build runs the same engine. */
static inline void fz_use_interpreter(void) {
    static int ready;
    if (!ready) {
        FZ_CHECK(hg_set_backend("interp") == HG_OK, "set_backend: %s", hg_last_error());
        ready = 1;
    }
}

/* The input as a stream of bytes; reads past the end give zeros. */
typedef struct {
    const uint8_t *data;
    size_t size, pos;
} fz_bytes;

static inline unsigned fz_u8(fz_bytes *b) { return b->pos < b->size ? b->data[b->pos++] : 0u; }

/* A value in [0, n) from one byte (n <= 256). */
static inline unsigned fz_pick(fz_bytes *b, unsigned n) { return fz_u8(b) % n; }

static inline uint32_t fz_u32(fz_bytes *b) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)fz_u8(b) << (8 * i);
    return v;
}

static inline int fz_more(const fz_bytes *b) { return b->pos < b->size; }

#endif /* HG_FUZZ_H */
