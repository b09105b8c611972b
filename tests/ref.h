/*
 * tests/ref.h — helpers shared by the public-API tests (test_ops.c, test_errors.c): status
 * assertions that print hg_last_error(), float32 bit comparisons, a seeded generator, and
 * buffer transfer through the public C API only (nothing internal is included).
 */
#ifndef HG_TESTS_REF_H
#define HG_TESTS_REF_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hologram/hologram.h>

/* Fails the current test unless `call` returns `want`; the message shows the call, both
 * statuses and the thread's last error. */
#define REF_EXPECT(want, call) ref_expect_((want), (call), #call, __FILE__, __LINE__)
#define REF_OK(call) REF_EXPECT(HG_OK, call)

static inline void ref_expect_(hg_status want, hg_status got, const char *what, const char *file,
                               int line)
{
    if (got != want)
        fail_msg("%s:%d: %s returned %d (%s), expected %d (%s); last error: \"%s\"", file, line,
                 what, (int)got, hg_status_string(got), (int)want, hg_status_string(want),
                 hg_last_error());
}

/* The bits of a float32. */
static inline uint32_t ref_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* 1 when a and b are the same float32: identical bits, or both NaN (any payload). */
static inline int ref_same(float a, float b)
{
    return (isnan(a) && isnan(b)) || ref_bits(a) == ref_bits(b);
}

/* SplitMix64: the next 64 random bits of the stream *s. */
static inline uint64_t ref_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1) from the stream *s. */
static inline double ref_uniform(uint64_t *s)
{
    return (double)(ref_rand(s) >> 11) * 0x1.0p-53;
}

/* A new zero-filled linear buffer of `length` floats owned by `exec`. */
static inline uint64_t ref_buffer(uint64_t exec, uint64_t length)
{
    uint64_t b = 0;
    REF_OK(hg_executor_allocate_buffer(exec, length, &b));
    return b;
}

/* Copies n host floats into the buffer's first n elements. */
static inline void ref_write(uint64_t exec, uint64_t buf, const float *v, uint64_t n)
{
    REF_OK(hg_buffer_write(exec, buf, v, n));
}

/* Copies the buffer's first n elements out to host memory. */
static inline void ref_read(uint64_t exec, uint64_t buf, float *v, uint64_t n)
{
    REF_OK(hg_buffer_read(exec, buf, v, n));
}

/* malloc that fails the test instead of returning NULL. */
static inline void *ref_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        fail_msg("host allocation of %zu bytes failed", bytes);
    return p;
}

/* Runs this test binary again (/proc/self/exe) with argv (argv[0] its name; NULL ends it)
 * and the environment changes env ("NAME=value"; NULL ends it, NULL for none); its
 * standard output (up to cap - 1 bytes) goes to out, NUL-terminated.  Fails the test
 * unless the child exits with status 0. */
static inline void ref_run_self(char *const *argv, const char *const *env, char *out,
                                size_t cap)
{
    int fd[2];
    if (pipe(fd) != 0)
        fail_msg("pipe failed");
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork failed");
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        for (; env && *env; env++) {
            char buf[4096];
            snprintf(buf, sizeof buf, "%s", *env);
            char *eq = strchr(buf, '=');
            if (!eq)
                _exit(126);
            *eq = '\0';
            setenv(buf, eq + 1, 1);
        }
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t got;
    while (len < cap - 1 && (got = read(fd[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)got;
    out[len] = '\0';
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child %s %s failed (status %d): %s", argv[0], argv[1] ? argv[1] : "", status,
                 out);
}

#endif /* HG_TESTS_REF_H */
