/* ls and cat: reading the tree as a process reads the mount. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"

struct listing {
	struct mpfs_fs *fs;
	const char *dir;
	bool longform;
	int err;
};

static void print_entry(struct mpfs_fs *fs, const char *path, const char *name, bool longform)
{
	struct stat st;

	if (!longform) {
		printf("%s\n", name);
		return;
	}
	if (mpfs_fs_getattr(fs, path, &st)) {
		printf("? %12s %s\n", "?", name);
		return;
	}
	printf("%c %12lld %s\n", S_ISDIR(st.st_mode) ? 'd' : '-', (long long)st.st_size, name);
}

static int list_one(void *ctx, const char *name, bool dir)
{
	struct listing *l = ctx;
	char *path;

	(void)dir;
	if (asprintf(&path, "%s%s%s", l->dir, strcmp(l->dir, "/") ? "/" : "", name) < 0)
		return l->err = -ENOMEM;
	print_entry(l->fs, path, name, l->longform);
	free(path);
	return 0;
}

int mpfs_tool_ls(int argc, char **argv)
{
	bool on[1] = {false};
	struct mpfs_fs *fs;
	struct stat st;
	char *path;
	int rc;

	if (mpfs_tool_flags("ls", &argc, &argv, "l", on))
		return 1;
	if (argc < 1 || argc > 2)
		return mpfs_tool_usage_error("ls");
	fs = mpfs_tool_open(argv[0], true);
	if (!fs)
		return 1;
	path = mpfs_tool_abspath(argc > 1 ? argv[1] : "/");
	rc = path ? mpfs_fs_getattr(fs, path, &st) : -ENOMEM;
	if (!rc && S_ISDIR(st.st_mode)) {
		struct listing l = {fs, path, on[0], 0};
		rc = mpfs_fs_readdir(fs, path, list_one, &l);
		if (!rc)
			rc = l.err;
	} else if (!rc) {
		print_entry(fs, path, argv[1], on[0]);
	}
	if (rc)
		mpfs_tool_err("%s: %s", argc > 1 ? argv[1] : "/", strerror(-rc));
	free(path);
	mpfs_fs_close(fs);
	return rc ? 1 : 0;
}

int mpfs_tool_cat(int argc, char **argv)
{
	struct mpfs_fs *fs;
	struct stat st;
	char *path, *buf = NULL;
	size_t len;
	int rc;

	if (argc != 2)
		return mpfs_tool_usage_error("cat");
	fs = mpfs_tool_open(argv[0], true);
	if (!fs)
		return 1;
	path = mpfs_tool_abspath(argv[1]);
	rc = path ? mpfs_fs_getattr(fs, path, &st) : -ENOMEM;
	if (!rc && S_ISDIR(st.st_mode))
		rc = -EISDIR;
	if (!rc)
		rc = mpfs_tool_read(fs, path, &buf, &len);
	if (!rc && (fwrite(buf, 1, len, stdout) != len || fflush(stdout)))
		rc = -errno;
	if (rc)
		mpfs_tool_err("%s: %s", argv[1], strerror(-rc));
	free(buf);
	free(path);
	mpfs_fs_close(fs);
	return rc ? 1 : 0;
}
