/* The libfuse3 high-level operations over an fs/ view. */
#ifndef MPFS_MOUNT_OPS_H
#define MPFS_MOUNT_OPS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>

extern const struct fuse_operations mpfs_ops;

#endif
