/* FUSE glue: each operation hands its path or handle to fs/ and passes the
 * -errno it gets back through. */
#define _GNU_SOURCE /* RENAME_NOREPLACE */
#include "mount/ops.h"

#include <stdio.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/names.h"
#include "mount/notify.h"

static struct mpfs_fs *fs(void)
{
	return fuse_get_context()->private_data;
}

/* A read-only mount can change neither through the mount nor behind it
 * (an archive rewritten underneath is refused: EIO, ESTALE), so the kernel
 * may keep everything for the whole mount: names and attributes, listings
 * with their attributes (READDIRPLUS, so no LOOKUP per entry), and files
 * opened without OPEN and RELEASE (reads by path, fh 0). Set at init. */
static bool ro_listing_plus;
static bool ro_no_open;

/* How long the kernel may keep names and attributes on a read-only mount. */
#define RO_TIMEOUT 86400.0

static void *mpfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* open(O_TRUNC) arrives as one open, not a setattr then an open. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Weights are read in big sequential runs (cat, numpy.load, mmap):
	 * let the kernel read ahead and send nearly 1 MiB at a time. */
	conn->max_readahead = MPFS_READ_MAX;
	conn->max_read = MPFS_READ_MAX;
	conn->max_write = 1 << 20;
	/* Archive data is spliced from the archive's descriptor (read_buf). */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* Names and attributes may be cached for a second: the kernel sees
	 * every change made through the mount, and a commit that changes what
	 * a file shows tells it (mount/notify.c). Pages are kept between opens
	 * and across commits that did not touch the file: every entry carries
	 * the archive's mtime, which each commit moves, so the kernel must not
	 * drop pages on an mtime change (AUTO_INVAL_DATA); the files a commit
	 * changed are dropped by name. A change of size drops them anyway. */
	cfg->attr_timeout = 1.0;
	cfg->entry_timeout = 1.0;
	cfg->negative_timeout = 0;
	if (mpfs_fs_readonly(fs())) {
		cfg->attr_timeout = cfg->entry_timeout = cfg->negative_timeout = RO_TIMEOUT;
		/* Every listing as READDIRPLUS, not the first only: libfuse
		 * makes the entries' nodes (no LOOKUP) when readdir gives
		 * offsets, which are stable here. */
		if (conn->capable & FUSE_CAP_READDIRPLUS) {
			conn->want |= FUSE_CAP_READDIRPLUS;
			conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
			ro_listing_plus = true;
		}
		ro_no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
	}
	cfg->kernel_cache = 1;
	cfg->auto_cache = 0;
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* fs/ keeps an unlinked file readable for its open handles (its
	 * inode lives on): no .fuse_hidden renames. */
	cfg->hard_remove = 1;
	return fs();
}

static int mpfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	return mpfs_fs_getattr(fs(), path, st);
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t fill;
};

static int fill_one(void *ctx, const char *name, bool dir)
{
	struct fill_ctx *c = ctx;
	struct stat st = {.st_mode = dir ? S_IFDIR : S_IFREG};
	return c->fill(c->buf, name, &st, 0, 0);
}

/* Offsets given to the kernel: 1 and 2 for "." and "..", then 2 + the
 * position after the entry (mpfs_fs_readdir_from). */
static int fill_plus(void *ctx, const char *name, const struct stat *st, uint64_t next)
{
	struct fill_ctx *c = ctx;
	return c->fill(c->buf, name, st, (off_t)(next + 2), FUSE_FILL_DIR_PLUS);
}

static int mpfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
			struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fill_ctx c = {buf, fill};

	(void)fi, (void)flags;
	if (ro_listing_plus) {
		if (off < 1 && fill(buf, ".", NULL, 1, 0))
			return 0;
		if (off < 2 && fill(buf, "..", NULL, 2, 0))
			return 0;
		return mpfs_fs_readdir_from(fs(), path, off < 2 ? 0 : (uint64_t)off - 2, fill_plus,
					    &c);
	}
	/* A read-write mount gives the listing whole at offset 0: positions
	 * shift when an entry is unlinked between two READDIRs. */
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	return mpfs_fs_readdir(fs(), path, fill_one, &c);
}

static char bdi_path[64];
static pthread_once_t bdi_once = PTHREAD_ONCE_INIT;

void mpfs_ops_set_readahead_dev(unsigned major, unsigned minor)
{
	snprintf(bdi_path, sizeof(bdi_path), "/sys/class/bdi/%u:%u/read_ahead_kb", major, minor);
}

/* After INIT, which set the read-ahead to min(kernel's offer, ours). */
static void raise_readahead(void)
{
	FILE *f = bdi_path[0] ? fopen(bdi_path, "w") : NULL;

	if (f) {
		fprintf(f, "%u\n", MPFS_READ_MAX >> 10);
		fclose(f); /* a refusal leaves the kernel's default */
	}
}

static int mpfs_open(const char *path, struct fuse_file_info *fi)
{
	int rc;

	pthread_once(&bdi_once, raise_readahead);
	/* No OPEN or RELEASE from now on: reads come with fh 0, by path. */
	if (ro_no_open)
		return -ENOSYS;
	rc = mpfs_fs_open_file(fs(), path, fi->flags, false, &fi->fh);
	/* A reader's close commits nothing: spare it the FLUSH round trip. */
	if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC))
		fi->noflush = 1;
	return rc;
}

static int mpfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	return mpfs_fs_open_file(fs(), path, fi->flags, true, &fi->fh);
}

/* Reads of a handle, or (fh 0: opened without OPEN) of a path. */
static long read_mem(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (!fi->fh)
		return mpfs_fs_read_path(fs(), path, buf, size, (uint64_t)off);
	return mpfs_fs_read(fs(), fi->fh, buf, size, (uint64_t)off);
}

static int mpfs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	return (int)read_mem(path, buf, size, off, fi);
}

/* A bufvec of n buffers; libfuse frees it (and the memory buffers'
 * mem) with free() once the reply is sent. */
static struct fuse_bufvec *bufvec_new(size_t n)
{
	struct fuse_bufvec *v = calloc(1, sizeof(*v) + (n - 1) * sizeof(v->buf[0]));

	if (v)
		v->count = n;
	return v;
}

/* The copying read, for content that is made or edited here. */
static int read_copy(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fuse_bufvec *v = bufvec_new(1);
	void *mem = malloc(size ? size : 1);
	long n;

	if (!v || !mem) {
		free(v);
		free(mem);
		return -ENOMEM;
	}
	n = read_mem(path, mem, size, off, fi);
	if (n < 0) {
		free(v);
		free(mem);
		return (int)n;
	}
	v->buf[0] = (struct fuse_buf){.size = (size_t)n, .mem = mem};
	*bufp = v;
	return 0;
}

/* A big made array (nested lists) lies in memory that lasts (fs/fill.h):
 * its pages go into a pipe of this thread's by reference (vmsplice), and
 * libfuse splices that pipe into its own and on to the kernel, which
 * copies the bytes once, into the file's page cache. Copying them into a
 * reply buffer instead cost two copies here (the buffer, then libfuse's
 * write into its pipe) and the faults of a fresh buffer. */
struct reply_pipe {
	int fd[2];
};

static pthread_key_t pipe_key;
static pthread_once_t pipe_once = PTHREAD_ONCE_INIT;
static int pipe_key_rc;

static void reply_pipe_free(void *p)
{
	struct reply_pipe *rp = p;

	close(rp->fd[0]);
	close(rp->fd[1]);
	free(rp);
}

static void pipe_key_init(void)
{
	pipe_key_rc = pthread_key_create(&pipe_key, reply_pipe_free);
}

/* This thread's pipe, empty and with room for a whole reply; NULL if it
 * cannot have one (the caller copies). */
static struct reply_pipe *reply_pipe(void)
{
	struct reply_pipe *rp;
	int left = 0;

	pthread_once(&pipe_once, pipe_key_init);
	if (pipe_key_rc)
		return NULL;
	rp = pthread_getspecific(pipe_key);
	if (rp && ioctl(rp->fd[0], FIONREAD, &left) == 0 && left == 0)
		return rp;
	if (rp) { /* what a reply that was not sent left: start afresh */
		pthread_setspecific(pipe_key, NULL);
		reply_pipe_free(rp);
	}
	if (!(rp = malloc(sizeof(*rp))))
		return NULL;
	if (pipe2(rp->fd, O_CLOEXEC | O_NONBLOCK)) {
		free(rp);
		return NULL;
	}
	/* Every page of the reply may take a slot of its own: MPFS_READ_MAX
	 * leaves slots to spare in 1 MiB (and unaligned data takes one more). */
	if (fcntl(rp->fd[1], F_SETPIPE_SZ, 1 << 20) < (1 << 20) ||
	    pthread_setspecific(pipe_key, rp)) {
		reply_pipe_free(rp);
		return NULL;
	}
	return rp;
}

/* The read by reference, for a big made array; -EAGAIN: not one. */
static int read_pipe(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct reply_pipe *rp = reply_pipe();
	struct fuse_bufvec *v;
	long n;

	if (!rp)
		return -EAGAIN;
	if (fi->fh)
		n = mpfs_fs_read_pipe(fs(), fi->fh, size, (uint64_t)off, rp->fd[1]);
	else
		n = mpfs_fs_read_pipe_path(fs(), path, size, (uint64_t)off, rp->fd[1]);
	if (n < 0)
		return (int)n; /* anything it left is dropped at the next read */
	if (!(v = bufvec_new(1)))
		return -ENOMEM;
	v->count = n ? 1 : 0;
	v->buf[0] = (struct fuse_buf){
		.size = (size_t)n, .flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_RETRY, .fd = rp->fd[0]};
	*bufp = v;
	return 0;
}

/* Archive data goes from the archive's descriptor to the kernel by splice,
 * never through our memory (libfuse's passthrough_fh does the same); the
 * NPY header before it is a small memory buffer in the same vector. */
static int mpfs_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	char hdr[MPFS_SPAN_HDR_MAX];
	struct mpfs_span sp[2];
	struct fuse_bufvec *v;
	int n;

	if (fi->fh) {
		n = mpfs_fs_read_spans(fs(), fi->fh, size, (uint64_t)off, hdr, sp);
	} else {
		pthread_once(&bdi_once, raise_readahead); /* no open came first */
		n = mpfs_fs_read_spans_path(fs(), path, size, (uint64_t)off, hdr, sp);
	}
	if (n == -EAGAIN && (n = read_pipe(path, bufp, size, off, fi)) != -EAGAIN)
		return n;
	if (n == -EAGAIN)
		return read_copy(path, bufp, size, off, fi);
	if (n < 0)
		return n;
	if (!(v = bufvec_new(n ? (size_t)n : 1)))
		return -ENOMEM;
	v->count = (size_t)n;
	for (int i = 0; i < n; i++) {
		struct fuse_buf *b = &v->buf[i];
		b->size = sp[i].len;
		if (!sp[i].mem) {
			b->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
			b->fd = sp[i].fd;
			b->pos = (off_t)sp[i].off;
		} else if ((b->mem = malloc(sp[i].len))) {
			memcpy(b->mem, sp[i].mem, sp[i].len);
		} else {
			for (int j = 0; j < i; j++)
				if (!(v->buf[j].flags & FUSE_BUF_IS_FD))
					free(v->buf[j].mem);
			free(v);
			return -ENOMEM;
		}
	}
	*bufp = v;
	return 0;
}

static int mpfs_write(const char *path, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)path;
	if (!fi->fh)
		return -EROFS; /* opened without OPEN: a read-only mount */
	return (int)mpfs_fs_write(fs(), fi->fh, buf, size, (uint64_t)off);
}

static int mpfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int rc = mpfs_fs_truncate(fs(), path, fi ? fi->fh : 0, (uint64_t)size);
	mpfs_notify_sync();
	return rc;
}

static int mpfs_flush(const char *path, struct fuse_file_info *fi)
{
	int rc;

	(void)path;
	/* Opened without OPEN (read-only): nothing to commit, ever. ENOSYS
	 * spares every later close its FLUSH. */
	if (!fi->fh)
		return -ENOSYS;
	rc = mpfs_fs_flush(fs(), fi->fh);
	mpfs_notify_sync();
	return rc;
}

static int mpfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int rc;

	(void)path, (void)datasync;
	if (!fi->fh)
		return 0; /* opened without OPEN: a read-only mount */
	rc = mpfs_fs_flush(fs(), fi->fh);
	mpfs_notify_sync();
	return rc;
}

static int mpfs_release(const char *path, struct fuse_file_info *fi)
{
	int rc;

	(void)path;
	if (!fi->fh)
		return 0; /* not sent without OPEN; nothing to release */
	rc = mpfs_fs_release(fs(), fi->fh);
	mpfs_notify_sync();
	return rc;
}

static int mpfs_unlink(const char *path)
{
	return mpfs_fs_unlink(fs(), path);
}

static int mpfs_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	return mpfs_fs_mkdir(fs(), path);
}

static int mpfs_rmdir(const char *path)
{
	return mpfs_fs_rmdir(fs(), path);
}

static int mpfs_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE has no meaning for keys */
	int rc = mpfs_fs_rename(fs(), from, to, flags & RENAME_NOREPLACE);
	mpfs_notify_sync();
	return rc;
}

/* Modes, owners and times are not stored in archives: accepted, ignored. */
static int mpfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path, (void)mode, (void)fi;
	return mpfs_fs_readonly(fs()) ? -EROFS : 0;
}

static int mpfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)path, (void)uid, (void)gid, (void)fi;
	return mpfs_fs_readonly(fs()) ? -EROFS : 0;
}

static int mpfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)path, (void)tv, (void)fi;
	return mpfs_fs_readonly(fs()) ? -EROFS : 0;
}

static int mpfs_getxattr(const char *path, const char *name, char *buf, size_t size)
{
	return (int)mpfs_fs_getxattr(fs(), path, name, buf, size);
}

static int mpfs_listxattr(const char *path, char *buf, size_t size)
{
	return (int)mpfs_fs_listxattr(fs(), path, buf, size);
}

static int mpfs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_namemax = MPFS_NAME_MAX;
	st->f_flag = mpfs_fs_readonly(fs()) ? ST_RDONLY : 0;
	return 0;
}

const struct fuse_operations mpfs_ops = {
	.init = mpfs_init,
	.getattr = mpfs_getattr,
	.readdir = mpfs_readdir,
	.open = mpfs_open,
	.create = mpfs_create,
	.read = mpfs_read,
	.read_buf = mpfs_read_buf,
	.write = mpfs_write,
	.truncate = mpfs_truncate,
	.flush = mpfs_flush,
	.fsync = mpfs_fsync,
	.release = mpfs_release,
	.unlink = mpfs_unlink,
	.mkdir = mpfs_mkdir,
	.rmdir = mpfs_rmdir,
	.rename = mpfs_rename,
	.chmod = mpfs_chmod,
	.chown = mpfs_chown,
	.utimens = mpfs_utimens,
	.getxattr = mpfs_getxattr,
	.listxattr = mpfs_listxattr,
	.statfs = mpfs_statfs,
};
