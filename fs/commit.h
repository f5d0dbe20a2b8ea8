/* Atomic replacement of the archive with an edited copy. */
#ifndef MPFS_FS_COMMIT_H
#define MPFS_FS_COMMIT_H

#include <stddef.h>
#include <sys/stat.h>

#include "codec/encode.h"
#include "fs/view.h"

/* Writes old's archive with the edits applied into a temporary file beside
 * archive (with the archive's owner, group, mode and extended attributes
 * where this process may set them), fsyncs it, checks that it decodes,
 * renames it over archive and fsyncs the directory; a crash at any point
 * leaves the old or the new archive. ident is the archive as last read or
 * written (device, inode, size, mtime, ctime): -ESTALE if it is no longer
 * that file; updated to the new archive on success.
 * On success *out is a view of the new archive (opened with the same
 * options) and 0 is returned. On failure the archive is untouched, *out is
 * NULL, why is in err->msg, and the errno is the real one (-ENOSPC,
 * -EDQUOT, -EIO, -EACCES, ...), or -EINVAL for content that would make an
 * unmountable archive. One exception: when only the final directory fsync
 * failed, the new archive is in place, *out is set and its -errno returned. */
int mpfs_commit(const char *archive, const struct mpfs_view *old, struct stat *ident,
		const struct mpfs_edit *edits, size_t nedits, struct mpfs_view **out,
		struct mpfs_error *err);

/* Removes the temporary files beside archive that were left by an mpfs
 * killed while committing (their pid is gone); returns how many, each logged.
 * The archive itself is always whole: old or new. */
/* True if archive is still the file ident describes (device, inode, size,
 * mtime and ctime), i.e. nobody else replaced or changed it. */
bool mpfs_commit_unchanged(const char *archive, const struct stat *ident);

/* Why a commit is refused with -ESTALE. */
#define MPFS_STALE_MSG                                                                             \
	"the archive was changed on disk by someone else since it was read; not overwriting "      \
	"it (unmount and mount again to see their change)"

int mpfs_commit_cleanup(const char *archive, void (*log)(const char *fmt, ...));

#endif
