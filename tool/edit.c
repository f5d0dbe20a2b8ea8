/* set, rm, mv and mkdir: one change through fs/, committed as the mount
 * commits it. A refusal is logged by fs/ (the mount's log line) and gives
 * exit status 1; the archive is then untouched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"

/* Reports rc for what (unless fs/ already logged why) and returns 1, or 0. */
static int report(int rc, unsigned long logged_before, const char *what)
{
	if (!rc)
		return 0;
	if (mpfs_tool_logged() == logged_before)
		mpfs_tool_err("%s: %s", what, strerror(-rc));
	return 1;
}

int mpfs_tool_set(int argc, char **argv)
{
	unsigned long logged = mpfs_tool_logged();
	struct mpfs_fs *fs;
	struct stat st;
	char *path, *data = NULL;
	size_t len;
	int rc;

	if (argc < 2 || argc > 3)
		return mpfs_tool_usage_error("set");
	if (argc == 3 && strcmp(argv[2], "-")) {
		/* As `echo VALUE > FILE` writes it. */
		len = strlen(argv[2]);
		data = malloc(len + 2);
		if (!data)
			return report(-ENOMEM, logged, argv[1]);
		memcpy(data, argv[2], len);
		data[len++] = '\n';
	} else {
		rc = mpfs_tool_slurp("-", &data, &len);
		if (rc)
			return report(rc, logged, "standard input");
	}
	fs = mpfs_tool_open(argv[0], false);
	if (!fs) {
		free(data);
		return 1;
	}
	path = mpfs_tool_abspath(argv[1]);
	rc = path ? mpfs_fs_getattr(fs, path, &st) : -ENOMEM;
	if (!rc && S_ISDIR(st.st_mode))
		rc = -EISDIR;
	else if (rc == -ENOENT)
		rc = mpfs_tool_write(fs, path, data, len, true);
	else if (!rc)
		rc = mpfs_tool_write(fs, path, data, len, false);
	/* A refusal at the last close (an empty number) is logged, not
	 * returned: the mount's writer never sees it, the tool's user does. */
	if (!rc && mpfs_tool_logged() != logged)
		rc = -EINVAL;
	rc = report(rc, logged, argv[1]);
	free(path);
	free(data);
	mpfs_fs_close(fs);
	return rc;
}

/* Removes path, and with recursive everything under it. */
static int remove_path(struct mpfs_fs *fs, const char *path, bool recursive)
{
	struct mpfs_tool_tree t = {0};
	struct stat st;
	int rc = mpfs_fs_getattr(fs, path, &st);

	if (rc)
		return rc;
	if (!S_ISDIR(st.st_mode))
		return mpfs_fs_unlink(fs, path);
	if (!recursive)
		return -EISDIR;
	rc = mpfs_tool_walk(fs, path, &t);
	/* Children before their parents; in a list directory the last
	 * element first, so the numbers of the others stay put. */
	for (size_t i = t.n; i-- > 0 && !rc;)
		rc = t.e[i].dir ? mpfs_fs_rmdir(fs, t.e[i].path) : mpfs_fs_unlink(fs, t.e[i].path);
	mpfs_tool_tree_free(&t);
	return rc ? rc : mpfs_fs_rmdir(fs, path);
}

int mpfs_tool_rm(int argc, char **argv)
{
	unsigned long logged = mpfs_tool_logged();
	bool on[1] = {false};
	struct mpfs_fs *fs;
	char *path;
	int rc;

	if (mpfs_tool_flags("rm", &argc, &argv, "r", on))
		return 1;
	if (argc != 2)
		return mpfs_tool_usage_error("rm");
	fs = mpfs_tool_open(argv[0], false);
	if (!fs)
		return 1;
	path = mpfs_tool_abspath(argv[1]);
	rc = path ? remove_path(fs, path, on[0]) : -ENOMEM;
	rc = report(rc, logged, argv[1]);
	free(path);
	mpfs_fs_close(fs);
	return rc;
}

int mpfs_tool_mv(int argc, char **argv)
{
	unsigned long logged = mpfs_tool_logged();
	struct mpfs_fs *fs;
	struct stat st;
	char *from, *to, *into = NULL;
	const char *base;
	int rc;

	if (argc != 3)
		return mpfs_tool_usage_error("mv");
	fs = mpfs_tool_open(argv[0], false);
	if (!fs)
		return 1;
	from = mpfs_tool_abspath(argv[1]);
	to = mpfs_tool_abspath(argv[2]);
	rc = from && to ? 0 : -ENOMEM;
	/* Like mv(1): a directory as the target means "into it". */
	if (!rc && !mpfs_fs_getattr(fs, to, &st) && S_ISDIR(st.st_mode) && strcmp(from, to)) {
		base = strrchr(from, '/') + 1;
		if (asprintf(&into, "%s%s%s", to, strcmp(to, "/") ? "/" : "", base) < 0)
			rc = -ENOMEM;
	}
	if (!rc)
		rc = mpfs_fs_rename(fs, from, into ? into : to, false);
	if (rc && mpfs_tool_logged() == logged)
		mpfs_tool_err("mv %s %s: %s", argv[1], argv[2], strerror(-rc));
	free(into);
	free(from);
	free(to);
	mpfs_fs_close(fs);
	return rc ? 1 : 0;
}

int mpfs_tool_mkdir(int argc, char **argv)
{
	unsigned long logged = mpfs_tool_logged();
	struct mpfs_fs *fs;
	char *path;
	int rc;

	if (argc != 2)
		return mpfs_tool_usage_error("mkdir");
	fs = mpfs_tool_open(argv[0], false);
	if (!fs)
		return 1;
	path = mpfs_tool_abspath(argv[1]);
	rc = path ? mpfs_fs_mkdir(fs, path) : -ENOMEM;
	rc = report(rc, logged, argv[1]);
	free(path);
	mpfs_fs_close(fs);
	return rc;
}
