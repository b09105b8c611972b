/*
 * runtime/registry.c — the handle table and the process-wide registry lock.
 *
 * handle = kind << 56 | generation << 32 | (slot + 1)
 *
 * Slots live in one array that grows by doubling; objects are separately allocated, so the
 * pointers rt_get_* hand out stay valid while the table grows.  Unregistering a slot bumps
 * its generation (24 bits) and puts it on a free list; a slot whose generation would wrap
 * is retired instead, so no handle value is ever issued twice.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "rt.h"

#define RT_GEN_BITS 24
#define RT_GEN_LIMIT (1u << RT_GEN_BITS) /* generations are 0 .. RT_GEN_LIMIT-1 */
#define RT_NO_SLOT 0xFFFFFFFFu
#define RT_MAX_SLOTS 0xFFFFFFFEu         /* slot + 1 must fit 32 bits and not be 0 */

typedef struct {
    void *obj;          /* NULL when free or retired */
    uint32_t gen;       /* generation of the live object, or of the next one */
    uint32_t next_free; /* free-list link, RT_NO_SLOT at the end */
    uint8_t kind;       /* rt_kind of the live object (0 when never used) */
} rt_slot;

static rt_slot *rt_slots;
static uint32_t rt_n_slots, rt_cap_slots;
static uint32_t rt_free_head = RT_NO_SLOT;

/* ---- the registry lock -------------------------------------------------------------------
 * A reader/writer lock shaped for many short shared holders (every compute call) and rare
 * exclusive ones (create, free).  Each thread that reads owns a record on its own cache
 * line; taking the lock shared writes only that line (flag up, then check for a writer),
 * so concurrent callers share no written cache line and a shared release is a plain store.
 * A writer takes rt_lock_writer, raises rt_lock_writing, then waits until every record's
 * flag is down; a reader that finds a writer lowers its flag and waits on the writer's
 * mutex, so writers are preferred (a stream of compute calls cannot starve them).  The
 * flag-then-check on both sides is sequentially consistent, so one of the two always sees
 * the other.  Records are never freed: a thread's record is released at its exit (pthread
 * key destructor) for the next new thread to reuse. */
typedef struct rt_reader {
    _Alignas(64) atomic_int active;  /* this thread holds the lock shared */
    atomic_int taken;                /* a live thread owns the record */
    struct rt_reader *next;          /* list of all records (pushed under rt_lock_writer) */
} rt_reader;

typedef struct {
    rt_reader *reader;   /* this thread's record, NULL before its first shared enter */
    int exclusive;       /* the lock is held exclusive by this thread */
} rt_lock_state;

static pthread_mutex_t rt_lock_writer = PTHREAD_MUTEX_INITIALIZER;
static atomic_int rt_lock_writing;
static rt_reader *_Atomic rt_lock_readers;
static pthread_key_t rt_lock_key;
static pthread_once_t rt_lock_once = PTHREAD_ONCE_INIT;
static _Thread_local rt_lock_state rt_lock_me;

/* Thread exit: hands the thread's record back for reuse. */
static void rt_reader_release(void *record) {
    atomic_store(&((rt_reader *)record)->taken, 0);
}

static void rt_lock_init(void) { pthread_key_create(&rt_lock_key, rt_reader_release); }

/* The calling thread's record: a released one, or a new one; NULL when none can be had. */
static rt_reader *rt_reader_get(void) {
    pthread_once(&rt_lock_once, rt_lock_init);
    rt_reader *r;
    for (r = atomic_load(&rt_lock_readers); r; r = r->next) {
        int free_ = 0;
        if (atomic_compare_exchange_strong(&r->taken, &free_, 1))
            break;
    }
    if (!r) {
        r = aligned_alloc(_Alignof(rt_reader), sizeof *r);
        if (!r)
            return NULL;
        atomic_init(&r->active, 0);
        atomic_init(&r->taken, 1);
        pthread_mutex_lock(&rt_lock_writer);
        r->next = atomic_load(&rt_lock_readers);
        atomic_store(&rt_lock_readers, r);
        pthread_mutex_unlock(&rt_lock_writer);
    }
    if (pthread_setspecific(rt_lock_key, r) != 0) {
        atomic_store(&r->taken, 0);
        return NULL;
    }
    return r;
}

/* Takes the lock exclusive: no reader and no other writer inside. */
static void rt_lock_exclusive(rt_lock_state *me) {
    pthread_mutex_lock(&rt_lock_writer);
    atomic_store(&rt_lock_writing, 1);
    for (rt_reader *r = atomic_load(&rt_lock_readers); r; r = r->next)
        while (atomic_load(&r->active))
            sched_yield();
    me->exclusive = 1;
}

/* Clears the thread's error, then takes the registry lock shared or exclusive.  A thread
 * without a record (out of memory) takes it exclusive, which is always correct. */
void rt_enter(int exclusive) {
    rt_error_clear();
    rt_lock_state *me = &rt_lock_me;
    if (exclusive || (!me->reader && !(me->reader = rt_reader_get()))) {
        rt_lock_exclusive(me);
        return;
    }
    rt_reader *r = me->reader;
    for (;;) {
        atomic_store(&r->active, 1);
        if (!atomic_load(&rt_lock_writing))
            return;
        atomic_store(&r->active, 0);
        pthread_mutex_lock(&rt_lock_writer); /* held by the writer until it leaves */
        pthread_mutex_unlock(&rt_lock_writer);
    }
}

/* Releases the lock taken by rt_enter. */
void rt_leave(void) {
    rt_lock_state *me = &rt_lock_me;
    if (me->exclusive) {
        me->exclusive = 0;
        atomic_store(&rt_lock_writing, 0);
        pthread_mutex_unlock(&rt_lock_writer);
    } else {
        atomic_store_explicit(&me->reader->active, 0, memory_order_release);
    }
}

void rt_lock_fork(rt_fork_phase phase) {
    if (phase == RT_FORK_PREPARE) {
        rt_lock_exclusive(&rt_lock_me);
        rt_cjson_fork(phase);
        return;
    }
    rt_cjson_fork(phase);
    rt_lock_me.exclusive = 0;
    atomic_store(&rt_lock_writing, 0);
    pthread_mutex_unlock(&rt_lock_writer);
}

/* "an executor", "a buffer", "a tensor" for messages. */
static const char *rt_kind_name(uint8_t kind) {
    switch (kind) {
    case RT_KIND_EXECUTOR:
        return "an executor";
    case RT_KIND_BUFFER:
        return "a buffer";
    case RT_KIND_TENSOR:
        return "a tensor";
    case RT_KIND_EXPR:
        return "an expression";
    default:
        return "unknown";
    }
}

/* Finds the live object of `handle` and checks that it is of kind `want`; on failure
 * records why (zero, unknown, freed, wrong kind) and returns HG_ERR_INVALID_HANDLE. */
static hg_status rt_lookup(uint64_t handle, rt_kind want, void **out) {
    unsigned long long h = (unsigned long long)handle;
    if (handle == 0)
        return rt_error(HG_ERR_INVALID_HANDLE,
                        "handle 0x%016llx: zero is never a valid handle", h);
    uint8_t kind = (uint8_t)(handle >> 56);
    uint32_t gen = (uint32_t)(handle >> 32) & (RT_GEN_LIMIT - 1);
    uint32_t low = (uint32_t)handle;
    if (low == 0 || low - 1 >= rt_n_slots || kind < RT_KIND_EXECUTOR || kind > RT_KIND_EXPR)
        return rt_error(HG_ERR_INVALID_HANDLE, "handle 0x%016llx is not a live handle (unknown)",
                        h);
    const rt_slot *s = &rt_slots[low - 1];
    if (gen < s->gen)
        return rt_error(HG_ERR_INVALID_HANDLE, "handle 0x%016llx was freed", h);
    if (gen > s->gen || !s->obj || kind != s->kind)
        return rt_error(HG_ERR_INVALID_HANDLE, "handle 0x%016llx is not a live handle (unknown)",
                        h);
    if (kind != want)
        return rt_error(HG_ERR_INVALID_HANDLE, "handle 0x%016llx is %s, not %s", h,
                        rt_kind_name(kind), rt_kind_name((uint8_t)want));
    *out = s->obj;
    return HG_OK;
}

/* The executor of `handle` (lock held); INVALID_HANDLE with a message otherwise. */
hg_status rt_get_executor(uint64_t handle, rt_executor **out) {
    void *obj = NULL;
    hg_status st = rt_lookup(handle, RT_KIND_EXECUTOR, &obj);
    if (st == HG_OK)
        *out = obj;
    return st;
}

/* The buffer of `handle` (lock held); INVALID_HANDLE with a message otherwise. */
hg_status rt_get_buffer(uint64_t handle, rt_buffer **out) {
    void *obj = NULL;
    hg_status st = rt_lookup(handle, RT_KIND_BUFFER, &obj);
    if (st == HG_OK)
        *out = obj;
    return st;
}

/* The buffer of `handle`, which must belong to `exec` (lock held). */
hg_status rt_get_buffer_of(const rt_executor *exec, uint64_t handle, rt_buffer **out) {
    rt_buffer *b;
    hg_status st = rt_get_buffer(handle, &b);
    if (st != HG_OK)
        return st;
    if (b->exec != exec)
        return rt_error(HG_ERR_INVALID_HANDLE,
                        "buffer 0x%016llx belongs to executor 0x%016llx, not 0x%016llx",
                        (unsigned long long)handle, (unsigned long long)b->exec->handle,
                        (unsigned long long)exec->handle);
    *out = b;
    return HG_OK;
}

/* The tensor of `handle` (lock held); INVALID_HANDLE with a message otherwise. */
hg_status rt_get_tensor(uint64_t handle, rt_tensor **out) {
    void *obj = NULL;
    hg_status st = rt_lookup(handle, RT_KIND_TENSOR, &obj);
    if (st == HG_OK)
        *out = obj;
    return st;
}

/* The expression of `handle` (lock held); INVALID_HANDLE with a message otherwise. */
hg_status rt_get_expr(uint64_t handle, rt_expr **out) {
    void *obj = NULL;
    hg_status st = rt_lookup(handle, RT_KIND_EXPR, &obj);
    if (st == HG_OK)
        *out = obj;
    return st;
}

/* A free slot index (from the free list, or a new one at the end of the table), or
 * RT_NO_SLOT when the table cannot grow. */
static uint32_t rt_slot_take(void) {
    if (rt_free_head != RT_NO_SLOT) {
        uint32_t i = rt_free_head;
        rt_free_head = rt_slots[i].next_free;
        return i;
    }
    if (rt_n_slots == rt_cap_slots) {
        if (rt_cap_slots >= RT_MAX_SLOTS)
            return RT_NO_SLOT;
        uint64_t cap = rt_cap_slots ? 2ull * rt_cap_slots : 64;
        if (cap > RT_MAX_SLOTS)
            cap = RT_MAX_SLOTS;
        rt_slot *grown = realloc(rt_slots, cap * sizeof *grown);
        if (!grown)
            return RT_NO_SLOT;
        rt_slots = grown;
        rt_cap_slots = (uint32_t)cap;
    }
    rt_slots[rt_n_slots] = (rt_slot){NULL, 1, RT_NO_SLOT, 0};
    return rt_n_slots++;
}

/* Registers `obj` of `kind` (exclusive lock held); its handle, or 0 with NO_MEMORY. */
uint64_t rt_register(rt_kind kind, void *obj) {
    uint32_t i = rt_slot_take();
    if (i == RT_NO_SLOT) {
        rt_error_set("the handle table cannot grow beyond %u entries", (unsigned)rt_n_slots);
        return 0;
    }
    rt_slot *s = &rt_slots[i];
    s->obj = obj;
    s->kind = (uint8_t)kind;
    return (uint64_t)kind << 56 | (uint64_t)s->gen << 32 | (uint64_t)(i + 1);
}

/* Frees the slot of a live handle (exclusive lock held): later lookups say "was freed". */
void rt_unregister(uint64_t handle) {
    uint32_t i = (uint32_t)handle - 1;
    rt_slot *s = &rt_slots[i];
    s->obj = NULL;
    s->gen++;
    if (s->gen < RT_GEN_LIMIT) {
        s->next_free = rt_free_head;
        rt_free_head = i;
    }
}

/* Calls fn(obj, ctx) for every live object of `kind` (exclusive lock held).  The table does
 * not move meanwhile: fn may unregister (and free) objects but not register new ones. */
void rt_for_each(rt_kind kind, void (*fn)(void *obj, void *ctx), void *ctx) {
    for (uint32_t i = 0; i < rt_n_slots; i++)
        if (rt_slots[i].obj && rt_slots[i].kind == (uint8_t)kind)
            fn(rt_slots[i].obj, ctx);
}
