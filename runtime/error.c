/*
 * runtime/error.c — per-thread error messages and status names.
 *
 * Each thread has its own message buffer, so concurrent callers never see each other's
 * errors; a call that succeeds leaves it empty (rt_enter clears it).
 */
#include <stdio.h>

#include "rt.h"

#define RT_ERROR_CAP 512

static _Thread_local char rt_error_msg[RT_ERROR_CAP];

/* Formats the message into the calling thread's buffer (truncated to fit). */
void rt_error_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt_error_msg, sizeof rt_error_msg, fmt, ap);
    va_end(ap);
}

/* Empties the calling thread's message. */
void rt_error_clear(void) { rt_error_msg[0] = '\0'; }

/* The calling thread's last message ("" when its last call succeeded); never NULL. */
const char *hg_last_error(void) { return rt_error_msg; }

/* Static text for `status` from HG_STATUS_MAP; "unknown status" for other values. */
const char *hg_status_string(hg_status status) {
    switch (status) {
#define RT_STATUS_CASE_(name, value, text)                                                 \
    case name:                                                                             \
        return text;
        HG_STATUS_MAP(RT_STATUS_CASE_)
#undef RT_STATUS_CASE_
    }
    return "unknown status";
}
