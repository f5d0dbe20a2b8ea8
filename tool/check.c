/* check: the archive decoded as the mount decodes it, then every file of
 * the tree read (and every array's NPY parsed), as a reader of the whole
 * mount would. Exit 0 when all of it reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"

int mpfs_tool_check(int argc, char **argv)
{
	struct mpfs_tool_tree t = {0};
	struct mpfs_tool_array a;
	struct mpfs_fs *fs;
	size_t files = 0, len;
	char *buf;
	int rc;

	if (argc != 1)
		return mpfs_tool_usage_error("check");
	fs = mpfs_tool_open(argv[0], true);
	if (!fs)
		return 1;
	rc = mpfs_tool_walk(fs, "/", &t);
	if (rc)
		mpfs_tool_err("%s: %s", argv[0], strerror(-rc));
	for (size_t i = 0; i < t.n && !rc; i++) {
		if (t.e[i].dir)
			continue;
		files++;
		rc = mpfs_tool_array_load(fs, t.e[i].path, &buf, &a);
		if (rc == 0)
			mpfs_tool_array_free(buf, &a);
		else if (rc == -ENODATA && (rc = mpfs_tool_read(fs, t.e[i].path, &buf, &len)) == 0)
			free(buf);
		if (rc)
			mpfs_tool_err("%s: %s: %s", argv[0], t.e[i].path + 1, strerror(-rc));
	}
	if (!rc)
		printf("%s: ok (%zu files, %zu directories)\n", argv[0], files, t.n - files);
	mpfs_tool_tree_free(&t);
	mpfs_fs_close(fs);
	return rc ? 1 : 0;
}
