// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kmtls - tracepoint definitions (kmtls_trace.h lists the events)
 */

#define CREATE_TRACE_POINTS
#include "kmtls_trace.h"
