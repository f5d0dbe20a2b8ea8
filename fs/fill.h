/* The bytes of a nested-list array, made when it is first read: into a
 * buffer backed by huge pages where the kernel offers them, and by more
 * than one thread when the array is big enough to pay for them. */
#ifndef MPFS_FS_FILL_H
#define MPFS_FS_FILL_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/array.h"

/* A buffer of n bytes (at least 1) for made content, released with
 * mpfs_fill_free(p, n); NULL when out of memory. A big one (see
 * mpfs_fill_lasting) is a mapping of its own, aligned to 2 MiB and
 * advised for transparent huge pages: filling it then faults a few dozen
 * times instead of once per 4 KiB. */
uint8_t *mpfs_fill_alloc(uint64_t n);
void mpfs_fill_free(uint8_t *p, uint64_t n);

/* True if a buffer of n bytes from mpfs_fill_alloc is a mapping of its
 * own. Its pages then keep their bytes as long as anything references
 * them, even after mpfs_fill_free: nothing else ever writes them (heap
 * memory would be handed out again). So they may be given to the kernel
 * by reference (vmsplice) rather than copied. */
bool mpfs_fill_lasting(uint64_t n);

/* How many threads mpfs_fill_nested would use for a by itself: 1 below
 * MPFS_FILL_THREAD_BYTES of output per thread, else up to the CPUs this
 * process may run on (at most MPFS_FILL_MAX_THREADS) and the rows. */
#define MPFS_FILL_THREAD_BYTES ((uint64_t)4 << 20)
#define MPFS_FILL_MAX_THREADS  8
unsigned mpfs_fill_threads(const struct mpfs_array *a);

/* Writes the a->nbytes of nested array a of doc into out, splitting its
 * rows between nthreads threads (0: mpfs_fill_threads(a); the calling
 * thread takes a share, and does all of it when a thread cannot be
 * started). Each share runs under the SIGBUS guard. Returns 0, or -EIO if
 * the archive was cut short under its mapping (out is then partly
 * written). */
int mpfs_fill_nested(const struct mpfs_doc *doc, const struct mpfs_array *a, uint8_t *out,
		     unsigned nthreads);

#endif
