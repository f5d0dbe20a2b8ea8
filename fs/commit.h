/* Atomic replacement of the archive with an edited copy. */
#ifndef MPFS_FS_COMMIT_H
#define MPFS_FS_COMMIT_H

#include <stddef.h>

#include "codec/encode.h"
#include "fs/view.h"

/* Writes old's archive with the edits applied into a temporary file beside
 * archive, fsyncs it, checks that it decodes, renames it over archive and
 * fsyncs the directory; a crash at any point leaves the old or the new
 * archive. Refuses with -ESTALE if archive is no longer the file old was read
 * from. On success *out is a view of the new archive (opened with the same
 * options); on failure archive is untouched and why is in err->msg. */
int mpfs_commit(const char *archive, const struct mpfs_view *old, const struct mpfs_edit *edits,
		size_t nedits, struct mpfs_view **out, struct mpfs_error *err);

/* Removes the temporary files beside archive that were left by an mpfs
 * killed while committing (their pid is gone); returns how many, each logged.
 * The archive itself is always whole: old or new. */
/* True if archive is still the file old was read from (device, inode,
 * size and mtime), i.e. nobody else replaced or changed it. */
bool mpfs_commit_unchanged(const char *archive, const struct mpfs_view *old);

/* Why a commit is refused with -ESTALE. */
#define MPFS_STALE_MSG                                                                             \
	"the archive was changed on disk by someone else since it was read; not overwriting "      \
	"it (unmount and mount again to see their change)"

int mpfs_commit_cleanup(const char *archive, void (*log)(const char *fmt, ...));

#endif
