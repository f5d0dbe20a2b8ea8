/* The mounted filesystem: the current view of the archive, pending edits
 * (files open for writing, new files, editor scratch files), and commit.
 * Every function returns 0 (or a byte count) or -errno; all are safe to call
 * from many threads. */
#ifndef MPFS_FS_FS_H
#define MPFS_FS_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "codec/value.h"

struct mpfs_fs;

struct mpfs_fs_opts {
	bool raw; /* arrays as NAME.bin */
	bool ro;  /* refuse every change with EROFS */
	/* Where refusals and failures are reported (one line, no newline). */
	void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
	/* Told the path of a file whose content a commit changed (it is shown
	 * as the archive holds it now, which may differ from what was written:
	 * "300" is shown as "300\n"), so caches of it can be dropped. Called
	 * with the fs lock held: it must not call back into the fs. May be NULL. */
	void (*changed)(const char *path);
};

/* Opens the archive (see mpfs_view_open for errors). The mount is read-only
 * when opts->ro is set or the archive or its directory is not writable. */
int mpfs_fs_open(struct mpfs_fs **out, const char *archive, const struct mpfs_fs_opts *opts,
		 struct mpfs_error *err);
/* Commits what is still pending (files never flushed, entries hidden by a
 * rename to a scratch name, which are removed); scratch files are dropped.
 * The kernel does not wait for this after an unmount: mpfs does it before
 * it exits (mpfs_fs_close). */
void mpfs_fs_finish(struct mpfs_fs *fs);
/* mpfs_fs_finish, then frees everything. */
void mpfs_fs_close(struct mpfs_fs *fs);
bool mpfs_fs_readonly(const struct mpfs_fs *fs);

/* True for the editor and tool scratch names that never reach the archive:
 * a leading '.', a trailing '~', #NAME#, *.swp, *.swx, *.swpx, *.tmp, 4913,
 * and "sed" followed by six letters or digits. */
bool mpfs_fs_is_scratch(const char *name);

int mpfs_fs_getattr(struct mpfs_fs *fs, const char *path, struct stat *st);
int mpfs_fs_readdir(struct mpfs_fs *fs, const char *path,
		    int (*fill)(void *ctx, const char *name, bool dir), void *ctx);

/* The entries of directory path from position pos on (0: the first), each
 * with its attributes as mpfs_fs_getattr gives them and the position of
 * the entry after it, until fill returns non-zero. A position names the
 * same entry only while the namespace does not change: for read-only
 * mounts (mpfs_fs_readdir reads a listing whole). -ENOENT, -ENOTDIR,
 * -ENOMEM. */
int mpfs_fs_readdir_from(struct mpfs_fs *fs, const char *path, uint64_t pos,
			 int (*fill)(void *ctx, const char *name, const struct stat *st,
				     uint64_t next),
			 void *ctx);

/* Opens (or with create, makes) a file; *fh identifies it until release. */
int mpfs_fs_open_file(struct mpfs_fs *fs, const char *path, int flags, bool create, uint64_t *fh);
long mpfs_fs_read(struct mpfs_fs *fs, uint64_t fh, char *buf, size_t size, uint64_t off);
long mpfs_fs_write(struct mpfs_fs *fs, uint64_t fh, const char *buf, size_t size, uint64_t off);
/* fh is 0 for a truncate by path. */
int mpfs_fs_truncate(struct mpfs_fs *fs, const char *path, uint64_t fh, uint64_t size);
/* A piece of a read: size bytes at mem, or (mem NULL) at offset off of
 * the file fd. */
struct mpfs_span {
	const void *mem;
	int fd;
	uint64_t off;
	size_t len;
	bool lasting; /* mem's pages keep these bytes for good (fs/fill.h) */
};
#define MPFS_SPAN_HDR_MAX 1024

/* Where the bytes [off, off+size) of fh's file lie, for a zero-copy read:
 * up to two spans, a header copied into hdr, then a span of the archive's
 * file, whose descriptor stays open until fh is released. Returns the count
 * of spans (0 past the end); -EAGAIN when the file is not served from the
 * archive as it is (edited content, text, nested arrays: mpfs_fs_read gives
 * it); -EIO if the archive was cut short underneath; -ENOMEM. */
int mpfs_fs_read_spans(struct mpfs_fs *fs, uint64_t fh, size_t size, uint64_t off,
		       char hdr[MPFS_SPAN_HDR_MAX], struct mpfs_span sp[2]);
/* For a file whose bytes are made here and kept (a big nested-list
 * array): puts bytes [off, off+size) of it into the pipe whose write end
 * is pipe (O_NONBLOCK, with room for them), the header copied and the
 * array's pages by reference (vmsplice), not copied: they keep their
 * bytes until the pipe is drained, whatever happens to the file. Makes
 * the array if it was not. Returns the count put (0 past the end);
 * -EAGAIN for any other file (nothing put: use read_spans or read) or when
 * the pipe is full; on -EAGAIN and errors the pipe may hold part of the
 * bytes, and must be drained. -EIO, -ESTALE, -ENOMEM as mpfs_fs_read. */
long mpfs_fs_read_pipe(struct mpfs_fs *fs, uint64_t fh, size_t size, uint64_t off, int pipe);
/* Reads without a handle, by path, as mpfs_fs_read, mpfs_fs_read_spans and
 * mpfs_fs_read_pipe do with one: only on a read-only mount, whose snapshot
 * never changes (-EBADF on others). A span's descriptor is the archive's
 * own, open until mpfs_fs_close. Also -ENOENT, -EISDIR. */
long mpfs_fs_read_path(struct mpfs_fs *fs, const char *path, char *buf, size_t size, uint64_t off);
int mpfs_fs_read_spans_path(struct mpfs_fs *fs, const char *path, size_t size, uint64_t off,
			    char hdr[MPFS_SPAN_HDR_MAX], struct mpfs_span sp[2]);
long mpfs_fs_read_pipe_path(struct mpfs_fs *fs, const char *path, size_t size, uint64_t off,
			    int pipe);
/* Commits the file's edit if it changed and is not empty: -EINVAL when its
 * content is refused (the file then reads back as stored), -ESTALE when the
 * archive was changed by someone else, -EIO when writing failed. */
int mpfs_fs_flush(struct mpfs_fs *fs, uint64_t fh);
int mpfs_fs_release(struct mpfs_fs *fs, uint64_t fh);

int mpfs_fs_unlink(struct mpfs_fs *fs, const char *path);
int mpfs_fs_mkdir(struct mpfs_fs *fs, const char *path);
int mpfs_fs_rmdir(struct mpfs_fs *fs, const char *path);
/* noreplace: fail with -EEXIST if to exists (RENAME_NOREPLACE). */
int mpfs_fs_rename(struct mpfs_fs *fs, const char *from, const char *to, bool noreplace);

long mpfs_fs_getxattr(struct mpfs_fs *fs, const char *path, const char *name, char *buf,
		      size_t size);
long mpfs_fs_listxattr(struct mpfs_fs *fs, const char *path, char *buf, size_t size);

#endif
