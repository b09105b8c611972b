/*
 * canon/alloc.c — the counted, failable allocator of canon/alloc.h.
 */
#include "alloc.h"

/* This file calls libc itself: off with the macros of the forced include. */
#undef malloc
#undef calloc
#undef realloc
#undef aligned_alloc
#undef strdup
#undef free

static _Thread_local struct {
    uint64_t fail_in; /* 0: disarmed; else the allocations left until the failing one */
    uint64_t calls;
    int64_t live;
    const char *failed_site;
} canon_a;

/* 1 when this allocation is the armed failure (counts it either way). */
static int canon_alloc_fails(const char *site) {
    canon_a.calls++;
    if (canon_a.fail_in && --canon_a.fail_in == 0) {
        canon_a.failed_site = site;
        return 1;
    }
    return 0;
}

static void *canon_alloc_got(void *p) {
    canon_a.live += p != NULL;
    return p;
}

void *canon_malloc(size_t n, const char *site) {
    return canon_alloc_fails(site) ? NULL : canon_alloc_got(malloc(n));
}

void *canon_calloc(size_t count, size_t n, const char *site) {
    return canon_alloc_fails(site) ? NULL : canon_alloc_got(calloc(count, n));
}

void *canon_realloc(void *p, size_t n, const char *site) {
    if (canon_alloc_fails(site))
        return NULL;
    void *q = realloc(p, n);
    if (!p)
        canon_alloc_got(q);
    return q;
}

void *canon_aligned_alloc(size_t align, size_t n, const char *site) {
    return canon_alloc_fails(site) ? NULL : canon_alloc_got(aligned_alloc(align, n));
}

char *canon_strdup(const char *s, const char *site) {
    return canon_alloc_fails(site) ? NULL : canon_alloc_got(strdup(s));
}

void canon_free(void *p) {
    canon_a.live -= p != NULL;
    free(p);
}

void canon_alloc_fail_at(uint64_t n) {
    canon_a.fail_in = n;
    canon_a.failed_site = NULL;
}

void canon_alloc_stats_get(canon_alloc_stats *out) {
    out->calls = canon_a.calls;
    out->live = canon_a.live;
    out->failed_site = canon_a.failed_site;
}
