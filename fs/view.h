/* The view: the archive as a tree of named files and directories, with their
 * attributes and contents. No FUSE here: mount/ calls these, and they return
 * 0 or a byte count on success and -errno on failure. */
#ifndef MPFS_FS_VIEW_H
#define MPFS_FS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "codec/value.h"
#include "fs/fs.h"

struct mpfs_view;

struct mpfs_view_opts {
	bool raw; /* arrays as NAME.bin (raw bytes) instead of NAME.npy */
};

#define MPFS_ROOT_ID 0

/* Maps the archive at path and builds the view. On failure returns -errno
 * (-EINVAL for a malformed archive) with a one-line reason in *err; on
 * success *out is released with mpfs_view_close. */
int mpfs_view_open(struct mpfs_view **out, const char *path, const struct mpfs_view_opts *opts,
		   struct mpfs_error *err);
void mpfs_view_close(struct mpfs_view *v);

/* Resolves an absolute path ("/", "/params/alpha") to an entry id.
 * -ENOENT, -ENOTDIR, -ENAMETOOLONG. */
int mpfs_view_lookup(const struct mpfs_view *v, const char *path, uint32_t *id);

/* Fills *st: exact st_size, link counts, st_ino = id + 1, the archive's
 * times and the caller's uid/gid. -ENOMEM if rendering the content failed. */
int mpfs_view_stat(struct mpfs_view *v, uint32_t id, struct stat *st);

/* The entry named name in directory dir (one path component). Errors as
 * mpfs_view_lookup. */
int mpfs_view_lookup_child(const struct mpfs_view *v, uint32_t dir, const char *name, uint32_t *id);

bool mpfs_view_is_dir(const struct mpfs_view *v, uint32_t id);

/* Directory entries in archive order: count, and the name and id of the
 * i-th (the name lives as long as the view). */
uint32_t mpfs_view_nchildren(const struct mpfs_view *v, uint32_t id);
const char *mpfs_view_child(const struct mpfs_view *v, uint32_t id, uint32_t i, uint32_t *child);

/* Copies up to size bytes of the file's content from off into buf; returns
 * the count (0 at or past the end). -EISDIR, -ENOMEM. */
long mpfs_view_read(struct mpfs_view *v, uint32_t id, char *buf, size_t size, uint64_t off);

/* For a zero-copy read of [off, off+size) of file id when it is served
 * from the archive as it is (compact arrays, bins, exts): up to two spans,
 * the NPY header (copied into hdr) and then the archive's bytes, as an
 * offset in mpfs_view_fd. With made, also for an array made here in a
 * buffer that lasts (nested or swapped; see mpfs_fill_lasting), made now
 * if it was not: its bytes as a span of memory with .lasting set, which
 * lives as long as the view. Returns the count of spans (0 past the end),
 * -EAGAIN for other content that is made (text, small arrays: use
 * mpfs_view_read), -EISDIR, -ENOMEM, or -EIO if the archive was cut
 * short. */
int mpfs_view_spans(struct mpfs_view *v, uint32_t id, size_t size, uint64_t off,
		    char hdr[MPFS_SPAN_HDR_MAX], struct mpfs_span sp[2], bool made);
/* The archive, open for reading while the view lives. */
int mpfs_view_fd(const struct mpfs_view *v);

/* Extended attributes (user.mpfs.*). getxattr returns the value's length,
 * copying it when size > 0; -ENODATA if absent, -ERANGE if size is too
 * small. listxattr likewise for the NUL-separated list of names. */
long mpfs_view_getxattr(struct mpfs_view *v, uint32_t id, const char *name, char *buf, size_t size);
long mpfs_view_listxattr(struct mpfs_view *v, uint32_t id, char *buf, size_t size);

/* For the edit layer: the model node behind an entry, the decoded archive,
 * and the archive file's stat as it was when the view was opened. */
struct mpfs_node;
const struct mpfs_node *mpfs_view_node(const struct mpfs_view *v, uint32_t id);
const struct mpfs_doc *mpfs_view_doc(const struct mpfs_view *v);
const struct stat *mpfs_view_archive_stat(const struct mpfs_view *v);
/* True for -o raw: arrays as NAME.bin, raw little-endian C-order bytes. */
bool mpfs_view_raw(const struct mpfs_view *v);
/* The encoding a new array gets: nested lists in an archive that holds only
 * nested-list arrays (seed style), else compact. */
int mpfs_view_new_array_encoding(const struct mpfs_view *v);
/* True if new compact arrays get bin keys (b'nd', ...): the archive's
 * compact maps have them, as msgpack-numpy writes them, whose decode looks
 * for bin keys only. */
bool mpfs_view_new_array_bin_keys(const struct mpfs_view *v);

#endif
