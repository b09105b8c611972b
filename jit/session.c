/*
 * jit/session.c — the process's one LLJIT and host TargetMachine.
 *
 *   module --LLVMVerifyModule--> [dump "ir"] --JIT_PIPELINE with the host TM--> [dump
 *   "opt-ir"] --LLVMTargetMachineEmitToMemoryBuffer--> object --LLJIT (own resource
 *   tracker)--> kernel address
 *
 * Objects are emitted here rather than by LLJIT's compile layer so that a compiled kernel
 * and one read back from the disk cache take the same path.  The TargetMachine is shared,
 * so optimization and emission run under one lock; loading and lookups do not.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "../canon/env.h"
#include "jit_code_hash.h" /* generated: JIT_CODE_HASH */
#include "jit_internal.h"

/* The optimization pipeline.  The lowering already emits vectorized, unrolled loops
 * marked as such, so default<O3> only adds compile time (its InstCombine runs, loop
 * vectorizer and unroller were half of a cold compile; measured: same kernel speed).
 * What the lowering's IR needs: allocas to registers, folding of the constant vectors
 * and specialized lengths, CSE, hoisting of loop invariants, rotated loops. */
#define JIT_PIPELINE                                                                       \
    "function(sroa,early-cse,instcombine<no-verify-fixpoint>,simplifycfg,loop-mssa(licm),"  \
    "loop(loop-rotate),simplifycfg)"

#ifndef HG_LLVM_VERSION
#define HG_LLVM_VERSION "unknown"
#endif

static struct {
    pthread_once_t once;
    hg_status status;              /* of the one-time set-up */
    char msg[512];                 /* its message */
    LLVMOrcLLJITRef lljit;
    LLVMTargetMachineRef tm;
    char *triple;
    char *layout;
    char target[2048];             /* jit_session_target() */
    int dump_ir, dump_opt_ir;      /* HOLOGRAM_DUMP */
    int avx512;                    /* "+avx512f" among the host features */
    pthread_mutex_t tm_lock;       /* the TargetMachine: passes and emission */
    pthread_mutex_t bg_lock;
    char bg_msg[512];              /* last background error (error reporter) */
} jit_s = {.once = PTHREAD_ONCE_INIT,
           .tm_lock = PTHREAD_MUTEX_INITIALIZER,
           .bg_lock = PTHREAD_MUTEX_INITIALIZER};

hg_status jit_fail(hg_status status, char *err, size_t cap, const char *fmt, ...) {
    if (err && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return status;
}

hg_status jit_error(LLVMErrorRef e, const char *what, char *err, size_t cap) {
    char *m = LLVMGetErrorMessage(e); /* consumes e */
    pthread_mutex_lock(&jit_s.bg_lock);
    jit_fail(HG_ERR_COMPILE, err, cap, "%s: %s%s%s", what, m, jit_s.bg_msg[0] ? "; " : "",
             jit_s.bg_msg);
    jit_s.bg_msg[0] = '\0';
    pthread_mutex_unlock(&jit_s.bg_lock);
    LLVMDisposeErrorMessage(m);
    return HG_ERR_COMPILE;
}

/* Error reporter of the ExecutionSession: keeps the message for the next jit_error. */
static void jit_report_background(void *ctx, LLVMErrorRef e) {
    (void)ctx;
    char *m = LLVMGetErrorMessage(e);
    pthread_mutex_lock(&jit_s.bg_lock);
    snprintf(jit_s.bg_msg, sizeof jit_s.bg_msg, "background: %s", m);
    pthread_mutex_unlock(&jit_s.bg_lock);
    LLVMDisposeErrorMessage(m);
}

/* Reads HOLOGRAM_DUMP (canon/env.h): "ir" and "opt-ir" are the JIT's.  A bad value
 * dumps nothing here: runtime/exec.c fails every op with its message. */
static void jit_read_dump_switch(void) {
    static const char *const words[] = CANON_DUMP_WORDS;
    unsigned bits = 0;
    char bad[192];
    canon_env_words("HOLOGRAM_DUMP", words, &bits, bad, sizeof bad);
    jit_s.dump_ir = (bits & CANON_DUMP_IR) != 0;
    jit_s.dump_opt_ir = (bits & CANON_DUMP_OPT_IR) != 0;
}

/* One-time set-up: native target, host TargetMachine, LLJIT with process symbols. */
static void jit_session_init(void) {
    char *msg = NULL;
    LLVMErrorRef e;
    jit_read_dump_switch();
    if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter()) {
        jit_s.status = jit_fail(HG_ERR_COMPILE, jit_s.msg, sizeof jit_s.msg,
                                "LLVM has no native target");
        return;
    }
    jit_s.triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(jit_s.triple, &target, &msg)) {
        jit_s.status = jit_fail(HG_ERR_COMPILE, jit_s.msg, sizeof jit_s.msg,
                                "no LLVM target for %s: %s", jit_s.triple, msg);
        LLVMDisposeMessage(msg);
        return;
    }
    char *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures();
    jit_s.avx512 = strstr(features, "+avx512f") != NULL;
    jit_s.tm = LLVMCreateTargetMachine(target, jit_s.triple, cpu, features,
                                       LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                       LLVMCodeModelSmall);
    snprintf(jit_s.target, sizeof jit_s.target, "%s\n%s\n%s\n%s\n%s", cpu, features,
             HG_LLVM_VERSION, HOLOGRAM_VERSION_STRING, JIT_CODE_HASH);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    if (!jit_s.tm) {
        jit_s.status = jit_fail(HG_ERR_COMPILE, jit_s.msg, sizeof jit_s.msg,
                                "cannot create a TargetMachine for %s", jit_s.triple);
        return;
    }
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(jit_s.tm);
    jit_s.layout = LLVMCopyStringRepOfTargetData(td);
    LLVMDisposeTargetData(td);

    if ((e = LLVMOrcCreateLLJIT(&jit_s.lljit, NULL))) {
        jit_s.status = jit_error(e, "cannot create the LLJIT", jit_s.msg, sizeof jit_s.msg);
        return;
    }
    LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(jit_s.lljit),
                                            jit_report_background, NULL);
    /* Kernels may call memset/memcpy that the optimizer formed: resolve them in-process. */
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
        &gen, LLVMOrcLLJITGetGlobalPrefix(jit_s.lljit), NULL, NULL);
    if (e) {
        jit_s.status = jit_error(e, "cannot add process symbols", jit_s.msg, sizeof jit_s.msg);
        return;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(jit_s.lljit), gen);
    jit_s.status = HG_OK;
}

hg_status jit_session_get(char *err, size_t cap) {
    pthread_once(&jit_s.once, jit_session_init);
    if (jit_s.status != HG_OK)
        return jit_fail(jit_s.status, err, cap, "%s", jit_s.msg);
    return HG_OK;
}

const char *jit_session_target(void) { return jit_s.target; }

int jit_session_avx512(void) { return jit_s.avx512; }

void jit_session_prepare(LLVMModuleRef m) {
    LLVMSetTarget(m, jit_s.triple);
    LLVMSetDataLayout(m, jit_s.layout);
}

/* Prints module m to stderr under a heading (HOLOGRAM_DUMP); `note` ends the heading. */
static void jit_dump(LLVMModuleRef m, const char *what, const char *note) {
    char *text = LLVMPrintModuleToString(m);
    fprintf(stderr, "; ---- hologram %s: %s%s ----\n%s", what,
            LLVMGetModuleIdentifier(m, &(size_t){0}), note, text);
    LLVMDisposeMessage(text);
}

/* Verifies and optimizes m, dumping it as HOLOGRAM_DUMP asks (headings end with `note`),
 * then emits it as an object into *out_obj, or, out_obj NULL, emits nothing. */
static hg_status jit_session_build(LLVMModuleRef m, const char *note,
                                   LLVMMemoryBufferRef *out_obj, char *err, size_t cap) {
    char *msg = NULL;
    if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
        jit_fail(HG_ERR_COMPILE, err, cap, "invalid IR: %s", msg);
        LLVMDisposeMessage(msg);
        return HG_ERR_COMPILE;
    }
    LLVMDisposeMessage(msg);
    msg = NULL;
    if (jit_s.dump_ir)
        jit_dump(m, "ir", note);
    hg_status st = HG_OK;
    pthread_mutex_lock(&jit_s.tm_lock);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(m, JIT_PIPELINE, jit_s.tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (e) {
        st = jit_error(e, "optimization failed", err, cap);
    } else {
        if (jit_s.dump_opt_ir)
            jit_dump(m, "opt-ir", note);
        if (out_obj &&
            LLVMTargetMachineEmitToMemoryBuffer(jit_s.tm, m, LLVMObjectFile, &msg, out_obj)) {
            st = jit_fail(HG_ERR_COMPILE, err, cap, "code generation failed: %s",
                          msg ? msg : "?");
        }
        LLVMDisposeMessage(msg);
    }
    pthread_mutex_unlock(&jit_s.tm_lock);
    return st;
}

hg_status jit_session_compile(LLVMModuleRef m, LLVMMemoryBufferRef *out_obj, char *err,
                              size_t cap) {
    return jit_session_build(m, "", out_obj, err, cap);
}

int jit_session_dumping(void) { return jit_s.dump_ir || jit_s.dump_opt_ir; }

void jit_session_dump_loaded(LLVMModuleRef m, const char *err) {
    static const char note[] = " (loaded from the disk cache; IR regenerated by the same "
                               "code, JIT_CODE_HASH " JIT_CODE_HASH ")";
    char why[512];
    if (!m || jit_session_build(m, note, NULL, why, sizeof why) != HG_OK)
        fprintf(stderr, "; ---- hologram ir: loaded from the disk cache; its IR could not be "
                        "regenerated: %s ----\n", m ? why : err);
}

hg_status jit_session_load(LLVMMemoryBufferRef obj, const char *name, jit_kernel_fn *out_fn,
                           void **out_tracker, char *err, size_t cap) {
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit_s.lljit);
    LLVMOrcResourceTrackerRef rt = LLVMOrcJITDylibCreateResourceTracker(jd);
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFileWithRT(jit_s.lljit, rt, obj); /* takes obj */
    hg_status st = HG_OK;
    if (e) {
        st = jit_error(e, "cannot load the kernel object", err, cap);
    } else {
        LLVMOrcExecutorAddress addr = 0;
        if ((e = LLVMOrcLLJITLookup(jit_s.lljit, &addr, name)))
            st = jit_error(e, "kernel symbol not found", err, cap);
        else if (addr == 0)
            st = jit_fail(HG_ERR_COMPILE, err, cap, "kernel %s has address 0", name);
        else
            *out_fn = (jit_kernel_fn)(uintptr_t)addr;
    }
    if (st != HG_OK) {
        jit_session_unload(rt);
        return st;
    }
    *out_tracker = rt;
    return HG_OK;
}

void jit_session_unload(void *tracker) {
    LLVMOrcResourceTrackerRef rt = tracker;
    LLVMErrorRef e = LLVMOrcResourceTrackerRemove(rt);
    if (e)
        LLVMConsumeError(e); /* nothing to report to: the code is gone either way */
    LLVMOrcReleaseResourceTracker(rt);
}
