// Small bits of libc that Swift's Glibc module does not expose.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <malloc.h>

/// O_DIRECT (its value differs between architectures and is only defined with _GNU_SOURCE).
static inline int berth_o_direct(void) { return O_DIRECT; }
