/* Dropping the kernel's caches of files whose content a commit changed.
 * The kernel is told from a thread of its own: a notification sent from
 * inside a request on the same inode could wait on that very request. */
#ifndef MPFS_MOUNT_NOTIFY_H
#define MPFS_MOUNT_NOTIFY_H

#include <stdbool.h>

#include "mount/ops.h"

/* Starts the thread that invalidates paths of f; 0 or -errno. can_wait:
 * other threads serve requests meanwhile, so mpfs_notify_sync may wait
 * (with -s it must not: the kernel may need this very thread). */
int mpfs_notify_start(struct fuse *f, bool can_wait);
/* Queues path (copied); safe from any thread, never blocks on the kernel. */
void mpfs_notify_changed(const char *path);
/* Waits until what was queued so far has reached the kernel, so the call
 * that committed returns only once no stale size or page can be seen.
 * Call without holding the fs lock. */
void mpfs_notify_sync(void);
/* Drains the queue and joins the thread. */
void mpfs_notify_stop(void);

#endif
