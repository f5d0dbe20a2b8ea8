/* show: the tree as text, one line per file, for people and for git's
 * textconv (`git config diff.mpk.textconv 'mpfs-tool show'`):
 *
 *   params/C = 0.5
 *   weights/coef_.npy: <f8 (3,4) hash 5b2ac0f1e0d4a7c3 min -1.25 max 2 mean 0.125
 *   xtra/blob: 12 bytes, hash 8c1f0e...
 *
 * Text files show their one line of JSON; arrays their dtype, shape, a hash
 * of the elements and min/max/mean (NaNs left out of min and max); other
 * files (bin, ext, text of several lines) their size and hash. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/utf8.h"
#include "tool/tool.h"

/* The one line of a text file, or NULL for content that is not one line of
 * UTF-8 ending in a newline. */
const char *mpfs_tool_text_line(struct mpfs_fs *fs, const char *path, char *buf, size_t len)
{
	char ext[16];

	if (mpfs_fs_getxattr(fs, path, "user.mpfs.ext", ext, sizeof(ext)) >= 0)
		return NULL;
	if (!len || buf[len - 1] != '\n' || memchr(buf, '\n', len - 1) || memchr(buf, 0, len) ||
	    !mpfs_utf8_valid((const uint8_t *)buf, len))
		return NULL;
	buf[len - 1] = '\0';
	return buf;
}

int mpfs_tool_array_line(struct mpfs_fs *fs, const char *path, FILE *out)
{
	struct mpfs_tool_array a;
	char *bytes, hash[17];
	double lo = INFINITY, hi = -INFINITY, sum = 0;
	int rc = mpfs_tool_array_load(fs, path, &bytes, &a);

	if (rc)
		return rc;
	mpfs_tool_hash(a.data, a.count * a.itemsize, hash);
	fprintf(out, "%s: %s (%s) hash %s", path + 1, a.dtype, a.shape, hash);
	if (a.count && a.kind != 'c' && mpfs_tool_array_numeric(&a)) {
		for (uint64_t i = 0; i < a.count; i++) {
			double v = mpfs_tool_array_at(&a, i);
			lo = fmin(lo, v);
			hi = fmax(hi, v);
			sum += v;
		}
		fprintf(out, " min %.9g max %.9g mean %.9g", lo, hi, sum / (double)a.count);
	}
	fputc('\n', out);
	mpfs_tool_array_free(bytes, &a);
	return 0;
}

int mpfs_tool_show(int argc, char **argv)
{
	struct mpfs_tool_tree t = {0};
	struct mpfs_fs *fs;
	char *buf, hash[17];
	const char *line;
	size_t len;
	int rc;

	if (argc != 1)
		return mpfs_tool_usage_error("show");
	fs = mpfs_tool_open(argv[0], true);
	if (!fs)
		return 1;
	rc = mpfs_tool_walk(fs, "/", &t);
	for (size_t i = 0; i < t.n && !rc; i++) {
		const struct mpfs_tool_entry *e = &t.e[i];
		if (e->dir) {
			/* Only an empty map or list would otherwise not show. */
			if (i + 1 == t.n || strncmp(t.e[i + 1].path, e->path, strlen(e->path)) ||
			    t.e[i + 1].path[strlen(e->path)] != '/')
				printf("%s/ (empty)\n", e->path + 1);
			continue;
		}
		rc = mpfs_tool_array_line(fs, e->path, stdout);
		if (rc != -ENODATA)
			continue;
		rc = mpfs_tool_read(fs, e->path, &buf, &len);
		if (rc)
			break;
		line = mpfs_tool_text_line(fs, e->path, buf, len);
		if (line) {
			printf("%s = %s\n", e->path + 1, line);
		} else {
			mpfs_tool_hash(buf, len, hash);
			printf("%s: %zu bytes, hash %s\n", e->path + 1, len, hash);
		}
		free(buf);
	}
	if (rc)
		mpfs_tool_err("%s: %s", argv[0], strerror(-rc));
	mpfs_tool_tree_free(&t);
	mpfs_fs_close(fs);
	return rc ? 1 : 0;
}
