/* Dropping the kernel's caches of files whose content a commit changed.
 * The kernel is told from a thread of its own: a notification sent from
 * inside a request on the same inode could wait on that very request. */
#ifndef MPFS_MOUNT_NOTIFY_H
#define MPFS_MOUNT_NOTIFY_H

#include "mount/ops.h"

/* Starts the thread that invalidates paths of f; 0 or -errno. */
int mpfs_notify_start(struct fuse *f);
/* Queues path (copied); safe from any thread, never blocks on the kernel. */
void mpfs_notify_changed(const char *path);
/* Drains the queue and joins the thread. */
void mpfs_notify_stop(void);

#endif
