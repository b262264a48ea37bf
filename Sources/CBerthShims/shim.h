// Small bits of libc that Swift's Glibc module does not expose.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <malloc.h>

/// O_DIRECT (its value differs between architectures and is only defined with _GNU_SOURCE).
static inline int berth_o_direct(void) { return O_DIRECT; }

/// Starts write-back of a file range without waiting for it (sync_file_range(2), Linux only).
/// With `wait_before`, first waits for write-back already running on that range to finish.
static inline int berth_start_writeback(int fd, long long offset, long long count, int wait_before) {
#ifdef __linux__
    unsigned int flags = SYNC_FILE_RANGE_WRITE | (wait_before ? SYNC_FILE_RANGE_WAIT_BEFORE : 0);
    return sync_file_range(fd, offset, count, flags);
#else
    (void)fd; (void)offset; (void)count; (void)wait_before;
    return 0;
#endif
}
