/*
 * jit/jit.h — the JIT as the runtime sees it: no LLVM types cross this header.
 *
 *   jit_run(program, args) → cache lookup (key: form hash, class, specialization, target)
 *     hit  → call the kernel
 *     miss → disk cache (HOLOGRAM_CACHE_DIR) → else lower the form to LLVM IR, optimize
 *            for the host CPU, LLJIT → insert (LRU-bounded, HOLOGRAM_CACHE_ENTRIES) → call
 *
 * Thread-safe: any number of threads may call jit_run at once; concurrent misses on one
 * key compile once.
 */
#ifndef HG_JIT_H
#define HG_JIT_H

#include <stddef.h>
#include <stdint.h>

#include "../canon/canon.h"
#include <hologram/hologram.h>

/* Runs program `p` on `args` through a compiled kernel, writing the program's scalar result
 * (if it has one) to *result.  `boundary_class` is the 96-class index when the call's
 * output is a boundary buffer, else -1 (part of the cache key).
 * Returns HG_OK, or HG_ERR_COMPILE / HG_ERR_NO_MEMORY with a message in err[0..err_cap)
 * (NUL-terminated); on an error nothing was written to any slot, so the caller may run the
 * interpreter instead.  Programs with a CONTRACT stage need args->scratch: at least
 * CANON_CONTRACT_SCRATCH_FLOATS floats, 64-byte aligned (HG_ERR_NO_MEMORY without it). */
hg_status jit_run(const canon_program *p, const canon_args *args, int boundary_class,
                  float *result, char *err, size_t err_cap);

/* HG_OK, or HG_ERR_INVALID_ARGUMENT with the message (canon/env.h) of the first bad value
 * among the JIT's knobs: HOLOGRAM_CACHE_ENTRIES, HOLOGRAM_JIT_HASH_BITS, HOLOGRAM_CACHE_DIR,
 * HOLOGRAM_CACHE_DISK_FILES (each read once per process).  The runtime fails every op
 * with it; jit_run itself runs on the defaults. */
hg_status jit_env_check(char *err, size_t err_cap);

/* Counters of the process's kernel cache (fallbacks are counted by the runtime). */
void jit_cache_stats(hg_cache_stats *out);
/* Unloads every kernel and zeroes the counters. */
void jit_cache_reset(void);

#endif /* HG_JIT_H */
