/* diff: two archives compared by tree path, one line per difference:
 *
 *   params/C: 0.5 -> 1
 *   weights/coef_.npy: 3 of 12 elements differ, max abs difference 0.5
 *   weights/coef_.npy: dtype <f8 -> <f4, shape 3,4 -> 4,3
 *   xtra/notes: only in B.mpk
 *
 * Exit status as diff(1): 0 the same, 1 different, 2 trouble. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"

struct side {
	const char *name;
	struct mpfs_fs *fs;
	struct mpfs_tool_tree t;
};

static void encoding(struct mpfs_fs *fs, const char *path, char out[16])
{
	long n = mpfs_fs_getxattr(fs, path, "user.mpfs.encoding", out, 15);
	out[n < 0 ? 0 : n] = '\0';
}

/* Both are arrays: prints what differs; 1 if something did, 0, or -errno. */
static int diff_arrays(struct side *a, struct side *b, const char *path)
{
	struct mpfs_tool_array x, y;
	char *xb, *yb, ex[16], ey[16];
	uint64_t ndiff = 0;
	double maxd = 0;
	int rc = mpfs_tool_array_load(a->fs, path, &xb, &x);

	if (rc)
		return rc;
	rc = mpfs_tool_array_load(b->fs, path, &yb, &y);
	if (rc) {
		mpfs_tool_array_free(xb, &x);
		return rc;
	}
	encoding(a->fs, path, ex);
	encoding(b->fs, path, ey);
	if (strcmp(x.dtype, y.dtype) || strcmp(x.shape, y.shape)) {
		printf("%s:", path + 1);
		if (strcmp(x.dtype, y.dtype))
			printf(" dtype %s -> %s%s", x.dtype, y.dtype,
			       strcmp(x.shape, y.shape) ? "," : "");
		if (strcmp(x.shape, y.shape))
			printf(" shape (%s) -> (%s)", x.shape, y.shape);
		putchar('\n');
		rc = 1;
		goto out;
	}
	for (uint64_t i = 0; i < x.count; i++) {
		const uint8_t *p = x.data + i * x.itemsize, *q = y.data + i * y.itemsize;
		double u, v, d;
		if (!memcmp(p, q, x.itemsize))
			continue;
		if (!mpfs_tool_array_numeric(&x)) {
			ndiff++; /* bytes only: no distance */
			continue;
		}
		u = mpfs_tool_array_at(&x, i), v = mpfs_tool_array_at(&y, i);
		if (isnan(u) && isnan(v) &&
		    mpfs_tool_array_imag(&x, i) == mpfs_tool_array_imag(&y, i))
			continue; /* NaNs of different payloads */
		ndiff++;
		d = hypot(u - v, mpfs_tool_array_imag(&x, i) - mpfs_tool_array_imag(&y, i));
		if (isnan(d) || d > maxd)
			maxd = isnan(maxd) ? maxd : d;
	}
	rc = ndiff > 0 || strcmp(ex, ey);
	if (ndiff)
		printf("%s: %llu of %llu elements differ, max abs difference %.9g\n", path + 1,
		       (unsigned long long)ndiff, (unsigned long long)x.count, maxd);
	if (strcmp(ex, ey))
		printf("%s: encoding %s -> %s\n", path + 1, ex, ey);
out:
	mpfs_tool_array_free(xb, &x);
	mpfs_tool_array_free(yb, &y);
	return rc;
}

/* Both are files: 1 if they differ (printed), 0, or -errno. */
static int diff_files(struct side *a, struct side *b, const char *path)
{
	char *x, *y;
	const char *lx, *ly;
	size_t nx, ny;
	int rc = diff_arrays(a, b, path);

	if (rc != -ENODATA)
		return rc;
	rc = mpfs_tool_read(a->fs, path, &x, &nx);
	if (rc)
		return rc;
	rc = mpfs_tool_read(b->fs, path, &y, &ny);
	if (rc) {
		free(x);
		return rc;
	}
	rc = nx != ny || memcmp(x, y, nx);
	if (rc) {
		lx = mpfs_tool_text_line(a->fs, path, x, nx);
		ly = mpfs_tool_text_line(b->fs, path, y, ny);
		if (lx && ly)
			printf("%s: %s -> %s\n", path + 1, lx, ly);
		else
			printf("%s: content differs (%zu -> %zu bytes)\n", path + 1, nx, ny);
	}
	free(x);
	free(y);
	return rc;
}

static int compare(struct side *a, struct side *b)
{
	int differ = 0, rc;

	for (size_t i = 0; i < a->t.n; i++) {
		const struct mpfs_tool_entry *x = &a->t.e[i];
		const struct mpfs_tool_entry *y = mpfs_tool_tree_find(&b->t, x->path);
		if (!y) {
			printf("%s%s: only in %s\n", x->path + 1, x->dir ? "/" : "", a->name);
			differ = 1;
		} else if (x->dir != y->dir) {
			printf("%s: %s -> %s\n", x->path + 1, x->dir ? "directory" : "file",
			       y->dir ? "directory" : "file");
			differ = 1;
		} else if (!x->dir) {
			rc = diff_files(a, b, x->path);
			if (rc < 0) {
				mpfs_tool_err("%s: %s", x->path + 1, strerror(-rc));
				return 2;
			}
			differ |= rc;
		}
	}
	for (size_t i = 0; i < b->t.n; i++) {
		const struct mpfs_tool_entry *y = &b->t.e[i];
		if (!mpfs_tool_tree_find(&a->t, y->path)) {
			printf("%s%s: only in %s\n", y->path + 1, y->dir ? "/" : "", b->name);
			differ = 1;
		}
	}
	return differ;
}

int mpfs_tool_diff(int argc, char **argv)
{
	struct side s[2] = {{0}};
	int status = 2, rc = 0;

	if (argc != 2) {
		mpfs_tool_usage_error("diff");
		return 2;
	}
	for (int i = 0; i < 2 && !rc; i++) {
		s[i].name = argv[i];
		s[i].fs = mpfs_tool_open(argv[i], true);
		rc = s[i].fs ? mpfs_tool_walk(s[i].fs, "/", &s[i].t) : -EINVAL;
		if (rc && s[i].fs)
			mpfs_tool_err("%s: %s", argv[i], strerror(-rc));
	}
	if (!rc)
		status = compare(&s[0], &s[1]);
	for (int i = 0; i < 2; i++) {
		mpfs_tool_tree_free(&s[i].t);
		if (s[i].fs)
			mpfs_fs_close(s[i].fs);
	}
	return status;
}
