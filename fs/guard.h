/* Reading the archive's mapping after someone truncated the file in place
 * raises SIGBUS. Code that reads the mapping runs under a guard, which
 * turns that into -EIO for the reading thread instead of killing mpfs. */
#ifndef MPFS_FS_GUARD_H
#define MPFS_FS_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Installs the SIGBUS handler (once per process). 0 or -errno. */
int mpfs_guard_init(void);

/* Runs fn(arg) and returns its result, or -EIO if it touched a page of the
 * mapping that no longer exists. fn must not hold locks or own memory that
 * nobody else could free when that happens. Guards nest. */
int mpfs_guard_run(int (*fn)(void *arg), void *arg);

/* memcpy under the guard: false if the source vanished. */
bool mpfs_guard_copy(void *dst, const void *src, size_t n);

#endif
