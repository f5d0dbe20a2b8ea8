/* mpfs-tool: the tree of a model archive without FUSE (tool/cli.c). */
#include "tool/tool.h"

int main(int argc, char **argv)
{
	return mpfs_tool_main(argc, argv);
}
