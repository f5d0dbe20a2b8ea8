/* The libfuse3 high-level operations over an fs/ view. */
#ifndef MPFS_MOUNT_OPS_H
#define MPFS_MOUNT_OPS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>

extern const struct fuse_operations mpfs_ops;

/* The largest read request: archive data is spliced through a pipe, and
 * libfuse splices only when the reply fits the largest pipe an
 * unprivileged process may make (/proc/sys/fs/pipe-max-size, 1 MiB by
 * default) with a few pages to spare; beyond that it copies. */
#define MPFS_READ_MAX	  983040 /* 960 KiB */
#define MPFS_READ_MAX_OPT "-omax_read=983040"

/* Called after the mount, before requests are served: the kernel reads
 * ahead only 128 KiB on a FUSE mount unless told otherwise, and the INIT
 * exchange can only lower that; the first open raises it to MPFS_READ_MAX
 * through /sys/class/bdi/ (root only: otherwise it stays as it is). */
void mpfs_ops_set_readahead_dev(unsigned major, unsigned minor);

#endif
