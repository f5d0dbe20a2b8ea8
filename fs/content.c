/* Content of a file being edited, in bounded memory.
 *
 * A file opened for writing is not copied: its content is the archive
 * entry it was opened on (the base, read from a snapshot) up to a cut, plus
 * the chunks that writes changed. A one-element np.memmap edit of a 1 GiB
 * array therefore holds one chunk, and `truncate -s 2G` holds none. Changed
 * chunks live in memory while all files together stay under a budget, and
 * in an unlinked temporary file beside the archive beyond it.
 *
 * Invariant: every byte at or past len reads as zero wherever it is kept
 * (chunks are cleared when the file shrinks), and cut <= len. */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fs/fs_i.h"

#define CHUNK	((uint64_t)1 << 16)
#define SPILLED ((uint8_t *)1)
/* Changed chunks kept in memory, all files together. */
#define MEM_BUDGET ((size_t)32 << 20)

struct content *mpfs_content_new(struct snap *s, uint32_t id, uint64_t len)
{
	struct content *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->spill = -1;
	if (s) {
		c->base = mpfs_snap_get(s);
		c->base_id = id;
		c->cut = c->len = len;
	}
	return c;
}

void mpfs_content_free(struct mpfs_fs *fs, struct content *c)
{
	if (!c)
		return;
	for (size_t k = 0; k < c->nchunks; k++)
		if (c->chunks[k] && c->chunks[k] != SPILLED)
			free(c->chunks[k]);
	fs->mem -= c->mem;
	free(c->chunks);
	if (c->spill >= 0)
		close(c->spill);
	if (c->base)
		mpfs_snap_put(c->base);
	free(c);
}

/* A temporary file that vanishes when closed, beside the archive (on its
 * file system, not in memory), else in the temporary directory. */
static int temp_file(const struct mpfs_fs *fs)
{
	char dir[4096];
	const char *tmp = getenv("TMPDIR");
	int fd;

	mpfs_path_parent(fs->archive, dir, sizeof(dir));
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		fd = open(tmp && *tmp ? tmp : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* Writes n bytes at off: 0, or -errno with *wrote (if given) the bytes
 * written before the failure, which are in the file. */
static int pwrite_some(int fd, const void *buf, size_t n, uint64_t off, size_t *wrote)
{
	const char *p = buf;
	int rc = 0;

	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = w < 0 ? -errno : -EIO;
			break;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	if (wrote)
		*wrote = (size_t)(p - (const char *)buf);
	return rc;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	return pwrite_some(fd, buf, n, off, NULL);
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	char *p = buf;

	while (n) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) { /* a hole past the spill file's end */
			memset(p, 0, n);
			return 0;
		}
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Reads base bytes [off, off + n) (below the cut; zeros elsewhere). */
static int read_base(struct content *c, uint8_t *buf, size_t n, uint64_t off)
{
	size_t have = 0;

	if (c->base && off < c->cut) {
		uint64_t want = c->cut - off < n ? c->cut - off : n;
		long got = mpfs_view_read(c->base->v, c->base_id, (char *)buf, (size_t)want, off);
		if (got < 0)
			return (int)got;
		have = (size_t)got;
	}
	memset(buf + have, 0, n - have);
	return 0;
}

long mpfs_content_read(struct content *c, char *buf, size_t size, uint64_t off)
{
	uint64_t end;
	size_t done = 0;

	if (off >= c->len)
		return 0;
	end = c->len - off < size ? c->len : off + size;
	while (off < end) {
		uint64_t k = off / CHUNK, in = off % CHUNK;
		size_t n = (size_t)(CHUNK - in < end - off ? CHUNK - in : end - off);
		uint8_t *p = k < c->nchunks ? c->chunks[k] : NULL;
		int rc;

		if (p == SPILLED)
			rc = pread_all(c->spill, buf + done, n, off);
		else if (p)
			memcpy(buf + done, p + in, n), rc = 0;
		else
			rc = read_base(c, (uint8_t *)buf + done, n, off);
		if (rc)
			return rc;
		done += n;
		off += n;
	}
	return (long)done;
}

static int grow_index(struct content *c, uint64_t nchunks)
{
	uint8_t **p;

	if (nchunks <= c->nchunks)
		return 0;
	if (nchunks > SIZE_MAX / sizeof(*p))
		return -EFBIG;
	p = realloc(c->chunks, (size_t)nchunks * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + c->nchunks, 0, (size_t)(nchunks - c->nchunks) * sizeof(*p));
	c->chunks = p;
	c->nchunks = (size_t)nchunks;
	return 0;
}

/* Makes chunk k writable: in memory within the budget, else in the spill
 * file. Its bytes start as what the file reads there. */
static int own_chunk(struct mpfs_fs *fs, struct content *c, uint64_t k)
{
	uint8_t *p;
	int rc;

	if (c->chunks[k])
		return 0;
	if (fs->mem + CHUNK <= MEM_BUDGET && (p = malloc(CHUNK))) {
		if ((rc = read_base(c, p, CHUNK, k * CHUNK))) {
			free(p);
			return rc;
		}
		c->chunks[k] = p;
		c->mem += CHUNK;
		fs->mem += CHUNK;
		return 0;
	}
	if (c->spill < 0 && (c->spill = temp_file(fs)) < 0) {
		rc = c->spill;
		c->spill = -1;
		return rc;
	}
	if (!(p = malloc(CHUNK)))
		return -ENOMEM;
	rc = read_base(c, p, CHUNK, k * CHUNK);
	if (!rc)
		rc = pwrite_all(c->spill, p, CHUNK, k * CHUNK);
	free(p);
	if (!rc)
		c->chunks[k] = SPILLED;
	return rc;
}

long mpfs_content_write(struct mpfs_fs *fs, struct content *c, const char *buf, size_t size,
			uint64_t off)
{
	uint64_t end = off + size;
	size_t done = 0;
	int rc = 0;

	if (!size)
		return 0;
	if ((rc = grow_index(c, (end + CHUNK - 1) / CHUNK)))
		return rc;
	while (off < end) {
		uint64_t k = off / CHUNK, in = off % CHUNK;
		size_t n = (size_t)(CHUNK - in < end - off ? CHUNK - in : end - off);

		if ((rc = own_chunk(fs, c, k)))
			break;
		if (c->chunks[k] == SPILLED) {
			/* an overwrite can fail part way too (btrfs, a quota):
			 * what it wrote counts, as in write(2) */
			size_t w;
			rc = pwrite_some(c->spill, buf + done, n, off, &w);
			n = w;
		} else {
			memcpy(c->chunks[k] + in, buf + done, n);
		}
		done += n;
		off += n;
		if (rc)
			break;
	}
	/* A chunk that cannot be had, or written (the disk is full), ends the
	 * write: what went before is written, and is reported as a short
	 * write, as write(2) does; the size covers it (past it, bytes must
	 * read zero). */
	if (off > c->len)
		c->len = off;
	return done ? (long)done : rc;
}

int mpfs_content_truncate(struct mpfs_fs *fs, struct content *c, uint64_t len)
{
	if (len < c->len) {
		uint64_t first = (len + CHUNK - 1) / CHUNK, in = len % CHUNK, part = len / CHUNK;

		/* The kept part of the last chunk: what is cut off reads zero
		 * from now on. A spilled chunk comes back into memory for that
		 * (past the budget by this one chunk): zeroing it in the spill
		 * file would be a write, which can fail part way (a full disk,
		 * btrfs), and a failed truncation must change nothing. */
		if (in && part < c->nchunks && c->chunks[part] == SPILLED) {
			uint8_t *p = malloc(CHUNK);
			int rc = p ? pread_all(c->spill, p, in, part * CHUNK) : -ENOMEM;
			if (rc) {
				free(p);
				return rc;
			}
			c->chunks[part] = p;
			c->mem += CHUNK;
			fs->mem += CHUNK;
		}
		if (len < c->cut)
			c->cut = len;
		for (uint64_t k = first; k < c->nchunks; k++) {
			if (c->chunks[k] && c->chunks[k] != SPILLED) {
				free(c->chunks[k]);
				c->mem -= CHUNK;
				fs->mem -= CHUNK;
			}
			c->chunks[k] = NULL;
		}
		if (in && part < c->nchunks && c->chunks[part] && c->chunks[part] != SPILLED)
			memset(c->chunks[part] + in, 0, CHUNK - in);
	}
	c->len = len;
	return 0;
}

int mpfs_content_flatten(struct mpfs_fs *fs, struct content *c, const uint8_t **out, void **cookie)
{
	static const uint8_t empty[1];
	uint8_t *buf;
	long got;

	*cookie = NULL;
	if (c->len == 0) {
		*out = empty;
		return 0;
	}
	if (c->len > MPFS_FLAT_MEM_MAX) {
		struct content_split sp;
		int rc = mpfs_content_split(fs, c, 0, NULL, NULL, &sp);
		if (rc)
			return rc;
		free(sp.pieces); /* one piece: all of the mapping */
		*out = sp.map;
		*cookie = SPILLED; /* a mapping: unflatten unmaps it */
		return 0;
	}
	if (!(buf = malloc((size_t)c->len)))
		return -ENOMEM;
	got = mpfs_content_read(c, (char *)buf, (size_t)c->len, 0);
	if (got < 0) {
		free(buf);
		return (int)got;
	}
	*out = buf;
	*cookie = buf;
	return 0;
}

/* Whether chunk k still reads the base's bytes: never written, and below
 * the cut up to its end (or the content's). */
static bool kept(const struct content *c, uint64_t k)
{
	uint64_t end = (k + 1) * CHUNK < c->len ? (k + 1) * CHUNK : c->len;
	return (k >= c->nchunks || !c->chunks[k]) && end <= c->cut;
}

/* Copies content [off, off + n) to fd at at. */
static int copy_out(struct content *c, int fd, uint64_t off, uint64_t n, uint64_t at, char *buf)
{
	while (n) {
		long got =
			mpfs_content_read(c, buf, (size_t)(n < CHUNK * 16 ? n : CHUNK * 16), off);
		int rc = got <= 0 ? (got ? (int)got : -EIO) : pwrite_all(fd, buf, (size_t)got, at);
		if (rc)
			return rc;
		off += (uint64_t)got;
		at += (uint64_t)got;
		n -= (uint64_t)got;
	}
	return 0;
}

struct run {
	uint64_t len;
	bool kept;
};

/* Splits content [from, len) into runs of kept (base bytes where base says
 * the base is usable) and changed chunks; returns how many, or -ENOMEM. */
static long runs(const struct content *c, uint64_t from, bool base, struct run **out)
{
	struct run *r = NULL;
	size_t n = 0, cap = 0;

	for (uint64_t off = from; off < c->len;) {
		uint64_t k = off / CHUNK, end = (k + 1) * CHUNK < c->len ? (k + 1) * CHUNK : c->len;
		bool keep = base && kept(c, k);

		if (n && r[n - 1].kept == keep) {
			r[n - 1].len += end - off;
		} else {
			if (n == cap) {
				struct run *q = realloc(r, (cap = cap ? 2 * cap : 16) * sizeof(*r));
				if (!q) {
					free(r);
					return -ENOMEM;
				}
				r = q;
			}
			r[n++] = (struct run){end - off, keep};
		}
		off = end;
	}
	*out = r;
	return (long)n;
}

/* Copies the changed runs into a temporary file, mapped: the memory is the
 * page cache's, not ours. */
static int map_changed(struct mpfs_fs *fs, struct content *c, uint64_t from, const struct run *r,
		       size_t n, struct content_split *out)
{
	uint64_t changed = 0, off = from, at = 0;
	char *buf;
	int fd, rc = 0;

	for (size_t i = 0; i < n; i++)
		changed += r[i].kept ? 0 : r[i].len;
	if (!changed)
		return 0;
	if ((fd = temp_file(fs)) < 0)
		return fd;
	if (!(buf = malloc(CHUNK * 16)))
		rc = -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		if (!r[i].kept)
			rc = copy_out(c, fd, off, r[i].len, at, buf);
		at += r[i].kept ? 0 : r[i].len;
		off += r[i].len;
	}
	free(buf);
	if (!rc) {
		void *m = mmap(NULL, (size_t)changed, PROT_READ, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED)
			rc = -errno;
		else
			out->map = m, out->map_len = changed;
	}
	close(fd);
	return rc;
}

int mpfs_content_split(struct mpfs_fs *fs, struct content *c, uint64_t from, const uint8_t *base,
		       const struct mpfs_piece *head, struct content_split *out)
{
	struct run *r = NULL;
	long n = runs(c, from, base != NULL, &r);
	size_t first = head ? 1 : 0;
	uint64_t off = from, at = 0;
	int rc;

	*out = (struct content_split){0};
	if (n < 0)
		return (int)n;
	if ((rc = map_changed(fs, c, from, r, (size_t)n, out)) ||
	    !(out->pieces = malloc(((size_t)n + first) * sizeof(*out->pieces)))) {
		free(r);
		mpfs_content_unflatten(out->map, out->map_len, SPILLED);
		*out = (struct content_split){0};
		return rc ? rc : -ENOMEM;
	}
	if (head)
		out->pieces[0] = *head;
	for (size_t i = 0; i < (size_t)n; i++) {
		const uint8_t *p = r[i].kept ? base + (off - from) : out->map + at;
		out->pieces[first + i] = (struct mpfs_piece){p, (size_t)r[i].len};
		at += r[i].kept ? 0 : r[i].len;
		off += r[i].len;
	}
	out->n = (size_t)n + first;
	free(r);
	return 0;
}

void mpfs_content_unflatten(const uint8_t *p, uint64_t len, void *cookie)
{
	if (cookie != SPILLED)
		free(cookie);
	else if (p)
		munmap((void *)p, (size_t)len);
}
