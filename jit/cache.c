/*
 * jit/cache.c — jit_run and the kernel cache.
 *
 *   jit_run → key (form hash, boundary class, specialization) + the form's identity → lock
 *     ready entry    → hits++, LRU front, ref++ → unlock → call → ref--
 *     loading entry  → wait on the condition variable, look again
 *     no entry       → misses++, insert a loading entry → unlock → disk or compile →
 *                      lock → ready (or removed on error) → evict LRU entries beyond the
 *                      capacity that no call is running → broadcast
 *
 * An entry matches a call when its key words and its copy of the form's identity
 * (canon_program.ident, compared in full) are equal: the hash only finds candidates, so
 * two forms that share one can never share a kernel.
 *
 * Reference counts: the table holds one reference, each running call one.  Counts rise
 * only under the lock, so eviction (under the lock) sees refs == 1 only for an idle
 * entry; a call drops its reference without the lock, and whoever drops the last one
 * (only possible after the entry left the table) unloads the code.
 * Capacity: HOLOGRAM_CACHE_ENTRIES (1..JIT_CACHE_MAX, default JIT_CACHE_DEFAULT), read
 * once with the other knobs of the JIT (jit_env_check).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Orc.h>

#include "../canon/env.h"
#include "jit_internal.h"

#define JIT_CACHE_DEFAULT 4096u
#define JIT_CACHE_MAX (1ll << 24)
#define JIT_FNV_PRIME 0x100000001b3ull

typedef struct jit_entry {
    jit_key key;
    uint64_t h;
    uint8_t *ident;               /* the form's identity (own copy) */
    uint32_t ident_len;
    struct jit_entry *hnext;      /* bucket chain */
    struct jit_entry *prev, *next;/* LRU list (ready entries only), most recent first */
    int ready;
    atomic_uint refs;             /* raised under the lock; dropped anywhere */
    jit_kernel_fn fn;
    void *tracker;
} jit_entry;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    jit_entry **buckets;
    size_t n_buckets;             /* power of two; 0 before first use */
    jit_entry *head, *tail;
    hg_cache_stats st;
} jit_c = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* FNV-1a over len bytes, continuing from h (kernel symbol names only). */
static uint64_t jit_fnv(uint64_t h, const void *data, size_t len) {
    const unsigned char *d = data;
    for (size_t i = 0; i < len; i++) {
        h ^= d[i];
        h *= JIT_FNV_PRIME;
    }
    return h;
}

/* The 64-bit words of key k that its specialization uses; the rest are zero (jit_make_key
 * clears the key), so comparing and hashing these words decides equality. */
static size_t jit_key_words(const jit_key *k) {
    const size_t head = 3; /* form, bclass, spec */
    switch (k->spec) {
    case JIT_SPEC_CONTRACT_EXACT:
    case JIT_SPEC_CONTRACT_ANY:
        return head + 7;
    case JIT_SPEC_GRID:
        return head + 2 + JIT_GRID_CLASS_WORDS;
    case JIT_SPEC_RANGE_ANY:
        return head + 2; /* v[1]: streamed stores */
    default:
        return head + 1;
    }
}

_Static_assert(sizeof(jit_key) == (4 + 2 * CANON_MAX_DIMS) * sizeof(uint64_t),
               "jit_key is made of 64-bit words with no padding");

/* Hash of a cache key: a multiply-xorshift over its used words (the hot path). */
static uint64_t jit_key_hash(const jit_key *k) {
    const uint64_t *w = (const uint64_t *)k;
    uint64_t h = 0x2545f4914f6cdd1dull;
    for (size_t i = 0, n = jit_key_words(k); i < n; i++) {
        h = (h ^ w[i]) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    return h;
}

static double jit_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The knobs of this file, read once (jit_cache_env): HOLOGRAM_CACHE_ENTRIES and
 * HOLOGRAM_JIT_HASH_BITS (see jit_internal.h); a bad value keeps the default and its
 * message. */
static struct {
    pthread_once_t once;
    uint64_t capacity;
    uint64_t form_mask;
    char bad[192];
} jit_ce = {.once = PTHREAD_ONCE_INIT, .capacity = JIT_CACHE_DEFAULT, .form_mask = ~0ull};

static void jit_cache_env_read(void) {
    long long v;
    if (canon_env_int("HOLOGRAM_CACHE_ENTRIES", 1, JIT_CACHE_MAX, &v, jit_ce.bad,
                      sizeof jit_ce.bad) == 1)
        jit_ce.capacity = (uint64_t)v;
    char bad[sizeof jit_ce.bad] = "";
    if (canon_env_int("HOLOGRAM_JIT_HASH_BITS", 1, 63, &v, bad, sizeof bad) == 1)
        jit_ce.form_mask = (1ull << v) - 1;
    if (!jit_ce.bad[0])
        memcpy(jit_ce.bad, bad, sizeof bad);
}

static void jit_cache_env(void) {
    pthread_once(&jit_ce.once, jit_cache_env_read);
}

hg_status jit_env_check(char *err, size_t cap) {
    jit_cache_env();
    if (jit_ce.bad[0])
        return jit_fail(HG_ERR_INVALID_ARGUMENT, err, cap, "%s", jit_ce.bad);
    return jit_disk_env_check(err, cap);
}

/* Allocates the buckets for the capacity (lock held); -1 when memory runs out. */
static int jit_cache_init(void) {
    if (jit_c.n_buckets)
        return 0;
    jit_cache_env();
    const uint64_t cap = jit_ce.capacity;
    size_t nb = 64;
    while (nb < cap && nb < ((size_t)1 << 20))
        nb <<= 1;
    jit_c.buckets = calloc(nb, sizeof *jit_c.buckets);
    if (!jit_c.buckets)
        return -1;
    jit_c.n_buckets = nb;
    jit_c.st.capacity = cap;
    return 0;
}

/* The specialization key of running p on args (see jit_internal.h). */
static void jit_make_key(const canon_program *p, const canon_args *args, int bclass,
                         jit_key *k) {
    memset(k, 0, sizeof *k);
    jit_cache_env();
    k->form = p->hash & jit_ce.form_mask;
    k->bclass = bclass < 0 ? -1 : bclass;
    canon_domain dom = CANON_DOM_RANGE;
    for (uint32_t s = 0; s < p->n_stages && s < CANON_MAX_STAGES; s++)
        if (p->stages[s].domain == CANON_DOM_CONTRACT || p->stages[s].domain == CANON_DOM_GRID)
            dom = p->stages[s].domain;
    if (dom == CANON_DOM_CONTRACT) {
        const canon_contract_shape *c = &args->contract;
        int small = c->m <= JIT_EXACT_MAX_CONTRACT && c->n <= JIT_EXACT_MAX_CONTRACT &&
                    c->k <= JIT_EXACT_MAX_CONTRACT && c->m * c->n * c->k <= JIT_EXACT_MAX_CONTRACT;
        k->spec = small ? JIT_SPEC_CONTRACT_EXACT : JIT_SPEC_CONTRACT_ANY;
        if (small) {
            uint64_t v[7] = {c->m, c->n, c->k, (uint64_t)c->a_rs, (uint64_t)c->a_cs,
                             (uint64_t)c->b_rs, (uint64_t)c->b_cs};
            memcpy(k->v, v, sizeof v);
        }
    } else if (dom == CANON_DOM_GRID) { /* jit_run checked args->grid */
        const canon_grid *g = args->grid;
        k->spec = JIT_SPEC_GRID;
        k->v[0] = g->ndim | (uint64_t)g->outer << 8;
        const uint64_t inner = g->shape[g->ndim - 1];
        k->v[1] = inner <= JIT_EXACT_MAX_INNER ? inner + 1 : 0;
        for (uint32_t s = 0; s <= JIT_GRID_RESULT; s++) {
            if (s < JIT_GRID_RESULT ? s >= p->n_slots : !g->result)
                continue;
            const int64_t *st = s < JIT_GRID_RESULT ? g->stride[s] : g->result_stride;
            const uint32_t nd = s < JIT_GRID_RESULT ? g->ndim : g->outer;
            uint64_t bits = 0;
            for (uint32_t d = 0; d < nd; d++) {
                const jit_stride_class cl = st[d] == 0   ? JIT_STRIDE_ZERO
                                            : st[d] == 1 ? JIT_STRIDE_UNIT
                                                         : JIT_STRIDE_OTHER;
                bits |= (uint64_t)cl << (2 * d);
            }
            k->v[2 + s / 4] |= bits << (16 * (s % 4));
        }
    } else {
        k->spec = args->n <= JIT_EXACT_MAX_N ? JIT_SPEC_RANGE_EXACT : JIT_SPEC_RANGE_ANY;
        k->v[0] = args->n <= JIT_EXACT_MAX_N ? args->n : 0;
        /* v[1]: streamed stores (canon_args.stream) into 64-byte aligned slots */
        int nt = k->spec == JIT_SPEC_RANGE_ANY && args->stream && p->result_stage == CANON_NONE;
        for (uint32_t s = 0; nt && s < p->n_stages && s < CANON_MAX_STAGES; s++) {
            const uint32_t slot = p->stages[s].store_slot;
            nt = p->stages[s].reduce == CANON_RED_NONE && slot < CANON_MAX_SLOTS &&
                 (uintptr_t)args->slot[slot] % 64 == 0;
        }
        k->v[1] = (uint64_t)nt;
    }
}

/* Symbol name: hg_<op>_<specialization>[_c<class>]_<hash of the key hash and the form's
 * identity> (distinct for distinct forms even when their key hashes are equal). */
static void jit_kernel_name(const canon_program *p, const jit_key *k, uint64_t h, char *buf,
                            size_t cap) {
    const canon_op_info *info = canon_op_get(p->op);
    char spec[96];
    switch (k->spec) {
    case JIT_SPEC_RANGE_EXACT:
        snprintf(spec, sizeof spec, "n%llu", (unsigned long long)k->v[0]);
        break;
    case JIT_SPEC_CONTRACT_EXACT:
        snprintf(spec, sizeof spec, "%llux%llux%llu", (unsigned long long)k->v[0],
                 (unsigned long long)k->v[1], (unsigned long long)k->v[2]);
        break;
    case JIT_SPEC_GRID:
        snprintf(spec, sizeof spec, "grid%llud%llu", (unsigned long long)(k->v[0] & 0xff),
                 (unsigned long long)(k->v[0] >> 8));
        break;
    default:
        snprintf(spec, sizeof spec, k->v[1] ? "large_nt" : "large");
    }
    char cls[32] = "";
    if (k->bclass >= 0)
        snprintf(cls, sizeof cls, "_c%lld", (long long)k->bclass);
    snprintf(buf, cap, "hg_%s_%s%s_%016llx", info ? info->name : "expr", spec, cls,
             (unsigned long long)jit_fnv(h, p->ident, p->ident_len));
}

/* HOLOGRAM_JIT_FAIL set to anything but "" or "0". */
static int jit_forced_failure(void) {
    const char *s = getenv("HOLOGRAM_JIT_FAIL");
    return s && *s && strcmp(s, "0") != 0;
}

/* Result of bringing a kernel into memory. */
typedef struct {
    jit_kernel_fn fn;
    void *tracker;
    int from_disk;
    double seconds;
} jit_loaded;

/* HOLOGRAM_DUMP=ir/opt-ir for the kernel `name` of p and k that came from the disk cache:
 * lowers it again, only to print it (jit_session_dump_loaded). */
static void jit_dump_loaded(const canon_program *p, const jit_key *k, const char *name) {
    char err[256];
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = NULL;
    if (jit_lower(p, k, name, 0, LLVMOrcThreadSafeContextGetContext(tsc), &mod, err,
                  sizeof err) != HG_OK)
        mod = NULL;
    jit_session_dump_loaded(mod, err);
    if (mod)
        LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
}

/* Loads the kernel of key k from disk, or lowers and compiles it (writing it to disk). */
static hg_status jit_produce(const canon_program *p, const jit_key *k, uint64_t h,
                             jit_loaded *out, char *err, size_t cap) {
    char name[256];
    int broken = jit_forced_failure();
    double t0 = jit_now();
    LLVMMemoryBufferRef obj = NULL;
    if (!broken && jit_disk_read(k, p, &obj, name, sizeof name) == 0) {
        if (jit_session_load(obj, name, &out->fn, &out->tracker, err, cap) == HG_OK) {
            out->from_disk = 1;
            out->seconds = jit_now() - t0;
            if (jit_session_dumping())
                jit_dump_loaded(p, k, name);
            return HG_OK;
        }
        jit_disk_forget(k); /* valid checksum but unusable: never trust it again */
    }
    t0 = jit_now();
    jit_kernel_name(p, k, h, name, sizeof name);
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = NULL;
    hg_status st = jit_lower(p, k, name, broken, LLVMOrcThreadSafeContextGetContext(tsc), &mod,
                             err, cap);
    obj = NULL;
    if (st == HG_OK) {
        st = jit_session_compile(mod, &obj, err, cap);
        LLVMDisposeModule(mod);
    }
    LLVMOrcDisposeThreadSafeContext(tsc);
    if (st != HG_OK)
        return st;
    jit_disk_write(k, p, name, LLVMGetBufferStart(obj), LLVMGetBufferSize(obj));
    st = jit_session_load(obj, name, &out->fn, &out->tracker, err, cap);
    out->from_disk = 0;
    out->seconds = jit_now() - t0;
    return st;
}

/* Entry of key k (hash h) for the form of p, or NULL (lock held). */
static jit_entry *jit_find(const jit_key *k, uint64_t h, const canon_program *p) {
    for (jit_entry *e = jit_c.buckets[h & (jit_c.n_buckets - 1)]; e; e = e->hnext)
        if (e->h == h && memcmp(&e->key, k, jit_key_words(k) * sizeof(uint64_t)) == 0 &&
            e->ident_len == p->ident_len && memcmp(e->ident, p->ident, p->ident_len) == 0)
            return e;
    return NULL;
}

static void jit_lru_unlink(jit_entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        jit_c.head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        jit_c.tail = e->prev;
    e->prev = e->next = NULL;
}

static void jit_lru_push_front(jit_entry *e) {
    e->prev = NULL;
    e->next = jit_c.head;
    if (jit_c.head)
        jit_c.head->prev = e;
    jit_c.head = e;
    if (!jit_c.tail)
        jit_c.tail = e;
}

/* Removes e from its bucket chain and, if ready, from the LRU list (lock held). */
static void jit_table_remove(jit_entry *e) {
    jit_entry **pp = &jit_c.buckets[e->h & (jit_c.n_buckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    if (e->ready) {
        jit_lru_unlink(e);
        jit_c.st.entries--;
    }
}

/* Drops one reference; an unreferenced entry (already out of the table) is queued on
 * *dead (via hnext) for jit_free_dead. */
static void jit_unref(jit_entry *e, jit_entry **dead) {
    if (atomic_fetch_sub(&e->refs, 1u) == 1u) {
        e->hnext = *dead;
        *dead = e;
    }
}

/* Unloads and frees queued entries (lock not held). */
static void jit_free_dead(jit_entry *dead) {
    while (dead) {
        jit_entry *next = dead->hnext;
        if (dead->tracker)
            jit_session_unload(dead->tracker);
        free(dead->ident);
        free(dead);
        dead = next;
    }
}

/* Evicts least recently used idle entries while over capacity (lock held). */
static void jit_evict(jit_entry **dead) {
    jit_entry *e = jit_c.tail;
    while (jit_c.st.entries > jit_c.st.capacity && e) {
        jit_entry *prev = e->prev;
        if (atomic_load(&e->refs) == 1u) { /* only the table's: no call is running it */
            jit_table_remove(e);
            jit_c.st.evictions++;
            jit_unref(e, dead);
        }
        e = prev;
    }
}

/* Calls the kernel of ready entry e, which holds a reference for this call, and drops it;
 * *result is written only when `result` is given (programs with a scalar result). */
static void jit_call(jit_entry *e, const canon_args *args, float *result) {
    float r = 0.0f;
    e->fn(args, &r);
    jit_entry *dead = NULL;
    jit_unref(e, &dead);
    jit_free_dead(dead);
    if (result)
        *result = r;
}

hg_status jit_run(const canon_program *p, const canon_args *args, int boundary_class,
                  float *result, char *err, size_t err_cap) {
    if (!p || !args || p->oom || !p->ident)
        return jit_fail(HG_ERR_COMPILE, err, err_cap,
                        "jit_run: no usable program (a normal form from canon_rewrite)");
    for (uint32_t s = 0; s < p->n_stages && s < CANON_MAX_STAGES; s++) {
        const canon_grid *g = args->grid;
        if (p->stages[s].domain == CANON_DOM_GRID &&
            (!g || g->ndim < 1 || g->ndim > CANON_MAX_DIMS || g->outer > g->ndim ||
             (p->result_stage != CANON_NONE && !g->result)))
            return jit_fail(HG_ERR_COMPILE, err, err_cap,
                            "jit_run: a GRID program needs canon_args.grid with 1..%u "
                            "dimensions, outer <= ndim, and a result array if it has a result",
                            CANON_MAX_DIMS);
        if ((p->stages[s].domain == CANON_DOM_CONTRACT || p->stages[s].domain == CANON_DOM_GRID) &&
            (!args->scratch || args->scratch_floats < CANON_CONTRACT_SCRATCH_FLOATS ||
             (uintptr_t)args->scratch % 64 != 0))
            return jit_fail(HG_ERR_NO_MEMORY, err, err_cap,
                            "jit_run: a contraction or GRID program needs canon_args.scratch "
                            "(%u floats, 64-byte aligned)", CANON_CONTRACT_SCRATCH_FLOATS);
    }
    hg_status st = jit_session_get(err, err_cap);
    if (st != HG_OK)
        return st;
    int has_result = p->result_stage != CANON_NONE;
    jit_key key;
    jit_make_key(p, args, boundary_class, &key);
    uint64_t h = jit_key_hash(&key);

    pthread_mutex_lock(&jit_c.lock);
    if (jit_cache_init() != 0) {
        pthread_mutex_unlock(&jit_c.lock);
        return jit_fail(HG_ERR_NO_MEMORY, err, err_cap, "no memory for the kernel cache");
    }
    jit_entry *e;
    while ((e = jit_find(&key, h, p)) && !e->ready)
        pthread_cond_wait(&jit_c.cond, &jit_c.lock);
    if (e) {
        jit_c.st.hits++;
        atomic_fetch_add(&e->refs, 1u);
        if (jit_c.head != e) {
            jit_lru_unlink(e);
            jit_lru_push_front(e);
        }
        pthread_mutex_unlock(&jit_c.lock);
        jit_call(e, args, has_result ? result : NULL);
        return HG_OK;
    }
    jit_c.st.misses++;
    e = calloc(1, sizeof *e);
    if (e && !(e->ident = malloc(p->ident_len))) {
        free(e);
        e = NULL;
    }
    if (!e) {
        pthread_mutex_unlock(&jit_c.lock);
        return jit_fail(HG_ERR_NO_MEMORY, err, err_cap, "no memory for a cache entry");
    }
    memcpy(e->ident, p->ident, p->ident_len);
    e->ident_len = p->ident_len;
    e->key = key;
    e->h = h;
    atomic_init(&e->refs, 2u); /* the table's and this call's */
    size_t b = h & (jit_c.n_buckets - 1);
    e->hnext = jit_c.buckets[b];
    jit_c.buckets[b] = e;
    pthread_mutex_unlock(&jit_c.lock);

    jit_loaded got = {0};
    st = jit_produce(p, &key, h, &got, err, err_cap);

    jit_entry *dead = NULL;
    pthread_mutex_lock(&jit_c.lock);
    if (st != HG_OK) {
        jit_table_remove(e);
        atomic_store(&e->refs, 1u); /* waiters hold none; this call's goes with the table's */
        jit_unref(e, &dead);
    } else {
        e->fn = got.fn;
        e->tracker = got.tracker;
        e->ready = 1;
        jit_lru_push_front(e);
        jit_c.st.entries++;
        if (got.from_disk) {
            jit_c.st.disk_loads++;
            jit_c.st.disk_load_seconds += got.seconds;
        } else {
            jit_c.st.compiles++;
            jit_c.st.compile_seconds += got.seconds;
        }
        jit_evict(&dead);
    }
    pthread_cond_broadcast(&jit_c.cond);
    pthread_mutex_unlock(&jit_c.lock);
    jit_free_dead(dead);
    if (st != HG_OK)
        return st;
    jit_call(e, args, has_result ? result : NULL);
    return HG_OK;
}

void jit_cache_stats(hg_cache_stats *out) {
    pthread_mutex_lock(&jit_c.lock);
    if (jit_cache_init() == 0)
        *out = jit_c.st;
    else
        memset(out, 0, sizeof *out);
    pthread_mutex_unlock(&jit_c.lock);
    jit_disk_refusal(out->disk_error, sizeof out->disk_error);
}

void jit_cache_reset(void) {
    jit_entry *dead = NULL;
    pthread_mutex_lock(&jit_c.lock);
    while (jit_c.head) { /* ready entries; loading ones finish and stay */
        jit_entry *e = jit_c.head;
        jit_table_remove(e);
        jit_unref(e, &dead);
    }
    uint64_t cap = jit_c.st.capacity, entries = jit_c.st.entries;
    memset(&jit_c.st, 0, sizeof jit_c.st);
    jit_c.st.capacity = cap;
    jit_c.st.entries = entries;
    pthread_mutex_unlock(&jit_c.lock);
    jit_free_dead(dead);
}
