/*
 * canon/alloc.h — every heap allocation of the library, made countable and failable.
 *
 * The build force-includes this header into each source file of canon/, runtime/ and jit/
 * (-include, see the CMakeLists.txt of those folders), so malloc, calloc, realloc,
 * aligned_alloc, strdup and free there are canon/alloc.c's: plain libc calls that also
 * count, per thread, the calls and the blocks alive, and that fail on request.  cJSON's
 * allocations go the same way (cJSON_InitHooks, runtime/expr_json.c).
 *
 * The test hook (tests/test_alloc.c drives it, as SQLite's malloc tests do):
 * canon_alloc_fail_at(n) makes the calling thread's n-th allocation from then on return
 * NULL, once; the library must then return HG_ERR_NO_MEMORY (or succeed by another way),
 * leak nothing, and work afterwards.  Counts and the hook are per thread, so a thread
 * never fails because another armed it.
 */
#ifndef HG_CANON_ALLOC_H
#define HG_CANON_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* "file:line" of a call, for canon_alloc_stats.failed_site. */
#define CANON_ALLOC_STR2_(x) #x
#define CANON_ALLOC_STR_(x) CANON_ALLOC_STR2_(x)
#define CANON_ALLOC_SITE __FILE__ ":" CANON_ALLOC_STR_(__LINE__)

void *canon_malloc(size_t n, const char *site);
void *canon_calloc(size_t count, size_t n, const char *site);
void *canon_realloc(void *p, size_t n, const char *site);
void *canon_aligned_alloc(size_t align, size_t n, const char *site);
char *canon_strdup(const char *s, const char *site);
/* free(p); NULL is harmless. */
void canon_free(void *p);

/* Arms (n >= 1) or disarms (0) the calling thread's failure: its n-th allocation from now
 * on returns NULL, and later ones succeed again. */
void canon_alloc_fail_at(uint64_t n);

typedef struct {
    uint64_t calls;          /* allocations attempted on this thread (the failed one too) */
    int64_t live;            /* blocks allocated minus blocks freed on this thread */
    const char *failed_site; /* where the armed failure struck ("file:line", "cJSON"), or
                                NULL while it has not */
} canon_alloc_stats;

/* The calling thread's counts. */
void canon_alloc_stats_get(canon_alloc_stats *out);

#ifndef CANON_ALLOC_PLAIN /* defined by tests that include this, which call libc themselves */
#define malloc(n) canon_malloc((n), CANON_ALLOC_SITE)
#define calloc(c, n) canon_calloc((c), (n), CANON_ALLOC_SITE)
#define realloc(p, n) canon_realloc((p), (n), CANON_ALLOC_SITE)
#define aligned_alloc(a, n) canon_aligned_alloc((a), (n), CANON_ALLOC_SITE)
#define strdup(s) canon_strdup((s), CANON_ALLOC_SITE)
#define free(p) canon_free(p)
#endif

#endif /* HG_CANON_ALLOC_H */
