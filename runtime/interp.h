/*
 * runtime/interp.h — the block interpreter over canonical forms: the reference engine,
 * the JIT's fallback and the benchmarks' baseline.
 *
 * It evaluates each stage in blocks of INTERP_BLOCK elements: for every node of the DAG,
 * one dispatch per block (not per element) into a tight loop over the shared float32
 * semantics of canon/scalar.h, with temporaries that stay in L1/L2.
 */
#ifndef HG_INTERP_H
#define HG_INTERP_H

#include "../canon/canon.h"
#include <hologram/hologram.h>

#define INTERP_BLOCK 1024

/* Runs `p` on `args`; writes the program's scalar result (if any, and result non-NULL)
 * to *result.  Thread-safe: each thread has its own scratch, reused across calls and
 * freed at thread exit.
 * Preconditions (checked by the runtime, not here): slots hold enough elements for the
 * stage domains; RANGE slots are either the same array (in place) or disjoint, except
 * that a pure copy stage (root LOAD, store, no reduce) may overlap like memmove; the
 * output of a CONTRACT stage overlaps none of its inputs; a GRID store is as canon_grid
 * says.  The program itself is checked (canon_check, the CONTRACT slots, a GRID program's
 * canon_grid) before anything is written.
 * Returns HG_OK, or HG_ERR_NO_MEMORY (scratch could not be had; nothing written) or
 * HG_ERR_INTERNAL (a malformed program; nothing written). */
hg_status interp_run(const canon_program *p, const canon_args *args, float *result);

#endif /* HG_INTERP_H */
