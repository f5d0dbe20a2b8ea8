/* pack: a new archive from a directory: an empty map, then the directory
 * applied to it (apply.c), the top-level keys in the seed's order. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool/tool.h"

static const char *const seed_order[] = {"class_name", "types", "params", "xtra", "weights", NULL};

int mpfs_tool_pack(int argc, char **argv)
{
	static const unsigned char empty_map = 0x80;
	struct stat st = {.st_mode = S_IFDIR};
	int fd, rc;

	if (argc != 2)
		return mpfs_tool_usage_error("pack");
	if (stat(argv[0], &st) || !S_ISDIR(st.st_mode)) {
		mpfs_tool_err("%s: %s", argv[0], strerror(S_ISDIR(st.st_mode) ? errno : ENOTDIR));
		return 1;
	}
	fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0) {
		mpfs_tool_err("%s: %s", argv[1], strerror(errno));
		return 1;
	}
	rc = write(fd, &empty_map, 1) == 1 && fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	if (rc) {
		mpfs_tool_err("%s: %s", argv[1], strerror(-rc));
		unlink(argv[1]);
		return 1;
	}
	rc = mpfs_tool_apply(argv[0], argv[1], seed_order);
	if (rc)
		unlink(argv[1]);
	return rc;
}
