/* blis_include.h - includes <blis.h> with its own warnings silenced: blis.h is not
 * warning-clean under -Wextra -Wpedantic, and its warnings are not ours. Within the library
 * only gemm.c includes this (the benchmark includes it to time stock BLIS). blis.h uses
 * pthread barriers, which strict C11 hides: define _POSIX_C_SOURCE 200809L first. */
#ifndef SAT_BLIS_INCLUDE_H
#define SAT_BLIS_INCLUDE_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <blis.h>
#pragma GCC diagnostic pop

#endif
