/* mpfs-tool's command line: the subcommand table, the usage text and the
 * leading flags of a subcommand. */
#include <stdio.h>
#include <string.h>

#include "tool/tool.h"

#ifndef MPFS_VERSION
#define MPFS_VERSION "0"
#endif

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
} commands[] = {
	{"ls", mpfs_tool_ls, "[-l] ARCHIVE [PATH]"},
	{"cat", mpfs_tool_cat, "ARCHIVE PATH"},
	{"set", mpfs_tool_set, "ARCHIVE PATH [VALUE | -]"},
	{"rm", mpfs_tool_rm, "[-r] ARCHIVE PATH"},
	{"mv", mpfs_tool_mv, "ARCHIVE FROM TO"},
	{"mkdir", mpfs_tool_mkdir, "ARCHIVE PATH"},
	{"unpack", mpfs_tool_unpack, "ARCHIVE DIR"},
	{"apply", mpfs_tool_apply_cmd, "DIR ARCHIVE"},
	{"pack", mpfs_tool_pack, "DIR NEW.mpk"},
	{"diff", mpfs_tool_diff, "A.mpk B.mpk"},
	{"show", mpfs_tool_show, "ARCHIVE"},
	{"check", mpfs_tool_check, "ARCHIVE"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mpfs-tool COMMAND ARGS...\n"
		   "\n"
		   "The tree mpfs mounts, without FUSE.\n"
		   "\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "    %-7s %s\n", commands[i].name, commands[i].args);
	fprintf(f, "\n"
		   "    -h, --help     print this help and exit\n"
		   "    -V, --version  print the version and exit\n"
		   "See mpfs-tool(1).\n");
}

int mpfs_tool_main(int argc, char **argv)
{
	if (argc < 2) {
		mpfs_tool_err("missing command (see mpfs-tool --help)");
		return 1;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("mpfs-tool %s\n", MPFS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (argc > 2 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
			printf("usage: mpfs-tool %s %s\n", commands[i].name, commands[i].args);
			return 0;
		}
		return commands[i].run(argc - 2, argv + 2);
	}
	mpfs_tool_err("unknown command '%s' (see mpfs-tool --help)", argv[1]);
	return 1;
}

/* Used by the subcommands for a wrong number of arguments. */
int mpfs_tool_usage_error(const char *cmd)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			mpfs_tool_err("usage: mpfs-tool %s %s", cmd, commands[i].args);
	return 1;
}

int mpfs_tool_flags(const char *cmd, int *argc, char ***argv, const char *letters, bool *on)
{
	while (*argc > 0 && (*argv)[0][0] == '-' && (*argv)[0][1]) {
		const char *a = (*argv)[0];
		(*argc)--, (*argv)++;
		if (!strcmp(a, "--"))
			break;
		for (a++; *a; a++) {
			const char *k = strchr(letters, *a);
			if (!k)
				return mpfs_tool_usage_error(cmd);
			on[k - letters] = true;
		}
	}
	return 0;
}
