/* apply (and pack, through it): a real directory into an archive, as edits
 * made through fs/. All edits are committed into a copy of the archive
 * beside it, each exactly as the mount commits it; only when every one was
 * accepted is the copy renamed over the archive. One refused file therefore
 * refuses the whole apply, and an apply with nothing to change writes
 * nothing at all (the archive keeps its bytes and its inode). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool/tool.h"

/* ---- the real directory, parents first, names sorted ---- */

struct real_entry {
	char *path; /* "/params/C", as in the tree */
	bool dir;
};

struct real_tree {
	struct real_entry *e;
	size_t n, cap;
};

static void real_free(struct real_tree *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->e[i].path);
	free(r->e);
}

static int real_push(struct real_tree *r, char *path, bool dir)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct real_entry *e = realloc(r->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		r->e = e;
		r->cap = cap;
	}
	r->e[r->n].path = path;
	r->e[r->n++].dir = dir;
	return 0;
}

static const char *const *order_first;

/* Names of order_first first (in that order), then the rest sorted. */
static int rank(const char *name)
{
	for (int i = 0; order_first && order_first[i]; i++)
		if (!strcmp(order_first[i], name))
			return i;
	return 1 << 20;
}

static int top_order(const struct dirent **a, const struct dirent **b)
{
	int ra = rank((*a)->d_name), rb = rank((*b)->d_name);
	return ra != rb ? ra - rb : strcmp((*a)->d_name, (*b)->d_name);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

/* rel is "" for the top or "/a/b"; failures name the real path. */
static int real_walk(const char *root, const char *rel, struct real_tree *r, char **bad)
{
	struct dirent **names;
	struct stat st;
	char *dir, *real, *path;
	int n, rc = 0;

	if (asprintf(&dir, "%s%s", root, rel) < 0)
		return -ENOMEM;
	n = scandir(dir, &names, not_dots, *rel ? by_name : top_order);
	if (n < 0) {
		rc = -errno;
		*bad = dir;
		return rc;
	}
	for (int i = 0; i < n; i++) {
		if (rc || asprintf(&path, "%s/%s", rel, names[i]->d_name) < 0) {
			rc = rc ? rc : -ENOMEM;
			free(names[i]);
			continue;
		}
		if (asprintf(&real, "%s%s", root, path) < 0) {
			free(path);
			rc = -ENOMEM;
		} else if (stat(real, &st)) {
			rc = -errno;
		} else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			rc = -EINVAL; /* a device, fifo or socket holds no value */
		} else {
			rc = real_push(r, path, S_ISDIR(st.st_mode));
			if (rc)
				free(path);
			else if (S_ISDIR(st.st_mode))
				rc = real_walk(root, path, r, bad);
		}
		if (rc && !*bad)
			*bad = real;
		else
			free(real);
		free(names[i]);
	}
	free(names);
	free(dir);
	return rc;
}

static bool real_has(const struct real_tree *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->e[i].path, path))
			return true;
	return false;
}

/* ---- the copy of the archive ---- */

static int copy_file(const char *from, int to)
{
	char buf[1 << 16];
	int fd = open(from, O_RDONLY);
	ssize_t n, w;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (ssize_t off = 0; off < n; off += w) {
			w = write(to, buf + off, (size_t)(n - off));
			if (w <= 0) {
				n = -1;
				break;
			}
		}
		if (n < 0)
			break;
	}
	if (n < 0 || fsync(to)) {
		int rc = -errno;
		close(fd);
		return rc ? rc : -EIO;
	}
	close(fd);
	return 0;
}

/* True if the two files hold the same bytes. */
static bool same_bytes(const char *x, const char *y)
{
	char *p = NULL, *q = NULL;
	size_t n, m;
	bool same = !mpfs_tool_slurp(x, &p, &n) && !mpfs_tool_slurp(y, &q, &m) && n == m &&
		    !memcmp(p, q, n);

	free(p);
	free(q);
	return same;
}

/* ---- one edit per difference ---- */

struct applier {
	struct mpfs_fs *fs;
	const char *root;
	struct mpfs_tool_tree t; /* the tree before any edit */
	unsigned edits;
};

/* Removes path and everything under it from the copy. */
static int remove_tree(struct applier *a, const char *path)
{
	struct mpfs_tool_tree sub = {0};
	struct stat st;
	int rc = mpfs_fs_getattr(a->fs, path, &st);

	if (rc || !S_ISDIR(st.st_mode))
		return rc ? rc : mpfs_fs_unlink(a->fs, path);
	rc = mpfs_tool_walk(a->fs, path, &sub);
	for (size_t i = sub.n; i-- > 0 && !rc;)
		rc = sub.e[i].dir ? mpfs_fs_rmdir(a->fs, sub.e[i].path)
				  : mpfs_fs_unlink(a->fs, sub.e[i].path);
	mpfs_tool_tree_free(&sub);
	return rc ? rc : mpfs_fs_rmdir(a->fs, path);
}

static int apply_entry(struct applier *a, const struct real_entry *r)
{
	const struct mpfs_tool_entry *have = mpfs_tool_tree_find(&a->t, r->path);
	const char *name = strrchr(r->path, '/') + 1;
	char *real, *data = NULL, *cur = NULL;
	size_t len, curlen;
	int rc;

	/* What an editor left behind never reaches the archive, unless the
	 * archive holds such a key. */
	if (!have && mpfs_fs_is_scratch(name))
		return 0;
	if (have && have->dir != r->dir) {
		rc = remove_tree(a, r->path);
		if (rc)
			return rc;
		a->edits++;
		have = NULL;
	}
	if (r->dir) {
		if (have)
			return 0;
		a->edits++;
		return mpfs_fs_mkdir(a->fs, r->path);
	}
	if (asprintf(&real, "%s%s", a->root, r->path) < 0)
		return -ENOMEM;
	rc = mpfs_tool_slurp(real, &data, &len);
	free(real);
	if (rc)
		return rc;
	if (have) {
		rc = mpfs_tool_read(a->fs, r->path, &cur, &curlen);
		if (rc == 0 && curlen == len && !memcmp(cur, data, len))
			goto out_free; /* unchanged: no edit */
	}
	a->edits++;
	{
		unsigned long logged = mpfs_tool_logged();
		rc = mpfs_tool_write(a->fs, r->path, data, len, !have);
		/* A refusal at the last close is logged, not returned. */
		if (!rc && mpfs_tool_logged() != logged)
			rc = -EINVAL;
	}
out_free:
	free(cur);
	free(data);
	return rc;
}

static int apply_all(struct applier *a, const struct real_tree *r, const char **bad)
{
	struct stat st;
	int rc;

	for (size_t i = 0; i < r->n; i++) {
		rc = apply_entry(a, &r->e[i]);
		if (rc) {
			*bad = r->e[i].path;
			return rc;
		}
	}
	/* Removed files and directories: children first, and the last list
	 * element first, so the numbers of the others stay put. */
	for (size_t i = a->t.n; i-- > 0;) {
		const char *p = a->t.e[i].path;
		if (real_has(r, p) || mpfs_fs_getattr(a->fs, p, &st))
			continue;
		rc = S_ISDIR(st.st_mode) ? remove_tree(a, p) : mpfs_fs_unlink(a->fs, p);
		if (rc) {
			*bad = p;
			return rc;
		}
		a->edits++;
	}
	return 0;
}

int mpfs_tool_apply(const char *dir, const char *archive, const char *const *toplevel_order)
{
	struct applier a = {.root = dir};
	struct real_tree r = {0};
	struct stat before, now;
	char *copy = NULL, *adir = NULL, *abase = NULL, *bad_real = NULL;
	const char *bad = NULL;
	int fd = -1, rc, status = 1;

	order_first = toplevel_order;
	rc = real_walk(dir, "", &r, &bad_real);
	if (rc) {
		mpfs_tool_err("%s: %s", bad_real ? bad_real : dir,
			      rc == -EINVAL ? "not a regular file or directory" : strerror(-rc));
		goto out;
	}
	if (stat(archive, &before) || access(archive, W_OK)) {
		mpfs_tool_err("%s: %s", archive, strerror(errno));
		goto out;
	}
	adir = strdup(archive);
	abase = strdup(archive);
	if (!adir || !abase ||
	    asprintf(&copy, "%s/.%s.apply-XXXXXX", dirname(adir), basename(abase)) < 0) {
		copy = NULL;
		mpfs_tool_err("%s: %s", archive, strerror(ENOMEM));
		goto out;
	}
	fd = mkstemp(copy);
	if (fd < 0) {
		mpfs_tool_err("%s: %s", copy, strerror(errno));
		free(copy);
		copy = NULL;
		goto out;
	}
	rc = copy_file(archive, fd);
	if (!rc && fchmod(fd, before.st_mode & 07777))
		rc = -errno;
	close(fd);
	if (rc) {
		mpfs_tool_err("%s: %s", copy, strerror(-rc));
		goto out_unlink;
	}
	a.fs = mpfs_tool_open(copy, false);
	if (!a.fs)
		goto out_unlink;
	rc = mpfs_tool_walk(a.fs, "/", &a.t);
	if (!rc)
		rc = apply_all(&a, &r, &bad);
	mpfs_fs_close(a.fs);
	if (rc) {
		/* Name the file; fs/ logged the reason of a refusal already. */
		if (bad)
			mpfs_tool_err("%s%s: %s: nothing applied", dir, bad, strerror(-rc));
		else
			mpfs_tool_err("%s: %s", archive, strerror(-rc));
		goto out_unlink;
	}
	/* Edits whose values encode to the bytes already stored ("0.5" for
	 * "0.5\n") change nothing: then the archive is not replaced either. */
	if (!a.edits || same_bytes(copy, archive)) {
		status = 0;
		goto out_unlink;
	}
	/* As the mount does: never overwrite a change someone else made. */
	if (stat(archive, &now) || now.st_ino != before.st_ino || now.st_size != before.st_size ||
	    now.st_mtim.tv_sec != before.st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
		mpfs_tool_err("%s: changed by someone else during the apply: nothing applied",
			      archive);
		goto out_unlink;
	}
	if (rename(copy, archive)) {
		mpfs_tool_err("%s: %s", archive, strerror(errno));
		goto out_unlink;
	}
	fd = open(adir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	status = 0;
	goto out;
out_unlink:
	unlink(copy);
out:
	mpfs_tool_tree_free(&a.t);
	real_free(&r);
	free(bad_real);
	free(copy);
	free(adir);
	free(abase);
	return status;
}

int mpfs_tool_apply_cmd(int argc, char **argv)
{
	if (argc != 2)
		return mpfs_tool_usage_error("apply");
	return mpfs_tool_apply(argv[0], argv[1], NULL);
}
