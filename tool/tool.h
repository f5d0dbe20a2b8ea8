/* mpfs-tool: the tree of a model archive without FUSE. Every subcommand goes
 * through fs/fs.h, the code behind the mount, so it shows the same names and
 * bytes and commits the same way. Subcommands return the process's exit
 * status and print their errors as one line on stderr. */
#ifndef MPFS_TOOL_TOOL_H
#define MPFS_TOOL_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fs/fs.h"

/* Runs mpfs-tool with argv as on the command line; returns the exit status. */
int mpfs_tool_main(int argc, char **argv);

/* ---- cli.c: the command line (it uses common.c; common.c does not use it) ---- */

/* Prints the usage line of cmd as an error; returns 1. */
int mpfs_tool_usage_error(const char *cmd);

/* Takes the leading flags (-l, -r, -lr) out of argc and argv: letter
 * letters[i] sets on[i]. Returns 0, or 1 after printing the usage of cmd
 * for another flag. "--" ends the flags. */
int mpfs_tool_flags(const char *cmd, int *argc, char ***argv, const char *letters, bool *on);

/* ---- common.c: opening, errors, whole-file reads and writes ---- */

/* Prints "mpfs-tool: " then the message on stderr, one line. */
void mpfs_tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The fs log: refusals, printed like mpfs_tool_err (the mount's log lines). */
void mpfs_tool_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Opens archive with fs/ (read-only if ro); on failure prints the mount's
 * one-line error (with the byte offset for a malformed archive) and returns
 * NULL. Close with mpfs_fs_close. */
struct mpfs_fs *mpfs_tool_open(const char *archive, bool ro);

/* "/" + path without leading or doubled slashes, in a new string (free it),
 * or NULL when out of memory. */
char *mpfs_tool_abspath(const char *path);

/* The whole content of file path of fs in a new NUL-terminated buffer (free
 * it) and its length in *len; 0 or -errno. */
int mpfs_tool_read(struct mpfs_fs *fs, const char *path, char **buf, size_t *len);

/* Writes data as the file's whole new content as a writer through the mount
 * does (open with O_TRUNC, creating it if create, write, flush, release):
 * 0, or the -errno of the call that refused (the reason was logged). */
int mpfs_tool_write(struct mpfs_fs *fs, const char *path, const void *data, size_t len,
		    bool create);

/* The whole content of a real file ("-" for stdin) in a new buffer; 0 or
 * -errno. */
int mpfs_tool_slurp(const char *file, char **buf, size_t *len);

/* How many lines fs/ has logged so far (mpfs_tool_log); a caller whose
 * failure was not logged says why itself. */
unsigned long mpfs_tool_logged(void);

/* ---- walk.c: the tree in archive order ---- */

struct mpfs_tool_entry {
	char *path; /* "/params/C" */
	bool dir;
	struct stat st;
};

struct mpfs_tool_tree {
	struct mpfs_tool_entry *e;
	size_t n, cap;
};

/* Every entry under dir (not dir itself), depth first, parents before their
 * children, in directory order. 0 or -errno; free with mpfs_tool_tree_free. */
int mpfs_tool_walk(struct mpfs_fs *fs, const char *dir, struct mpfs_tool_tree *t);
void mpfs_tool_tree_free(struct mpfs_tool_tree *t);
/* The entry of path, or NULL. */
const struct mpfs_tool_entry *mpfs_tool_tree_find(const struct mpfs_tool_tree *t, const char *path);

/* ---- array.c: the numbers of an .npy or .bin file ---- */

struct mpfs_tool_array {
	char dtype[24];	 /* "<f8", "<U10" */
	char shape[400]; /* "3,4" */
	uint64_t count;
	uint8_t itemsize;
	char kind;	     /* 'b', 'i', 'u', 'f', 'c' */
	const uint8_t *data; /* count * itemsize bytes, as stored */
	uint8_t *copy;	     /* owned copy behind data, or NULL */
};

/* Reads the array file path (its xattrs and bytes): 0, -ENODATA when path
 * is not an array, or -errno. Release with mpfs_tool_array_free. */
int mpfs_tool_array_load(struct mpfs_fs *fs, const char *path, char **bytes,
			 struct mpfs_tool_array *a);
void mpfs_tool_array_free(char *bytes, struct mpfs_tool_array *a);
/* Element i as a double (complex: the real part; use _imag for the other). */
/* True for dtypes read as numbers (bool, int, uint, float16/32/64,
 * complex64/128); others (strings, times, long doubles) are compared and
 * hashed as bytes only. */
bool mpfs_tool_array_numeric(const struct mpfs_tool_array *a);
double mpfs_tool_array_at(const struct mpfs_tool_array *a, uint64_t i);
double mpfs_tool_array_imag(const struct mpfs_tool_array *a, uint64_t i);

/* 64-bit FNV-1a of n bytes, as 16 hex digits in out. */
void mpfs_tool_hash(const void *p, size_t n, char out[17]);

/* ---- show.c ---- */

/* The one line of a text file (buf, len: its content; the newline is cut
 * off in place), or NULL for bytes that are not one line of UTF-8 ending in
 * a newline, or an ext value. */
const char *mpfs_tool_text_line(struct mpfs_fs *fs, const char *path, char *buf, size_t len);
/* Prints show's line for array file path: 0, -ENODATA if it is no array. */
int mpfs_tool_array_line(struct mpfs_fs *fs, const char *path, FILE *out);

/* ---- apply.c: a real directory into an archive ---- */

/* Commits the differences between real directory dir and the tree of the
 * archive file: changed, new and removed files and directories. Everything
 * is committed into a copy of the archive first; only when every edit was
 * accepted is the copy renamed over the archive, so one refused file leaves
 * the archive untouched. toplevel_order, if not NULL, is a NULL-terminated
 * list of names created first at the top level (pack). Returns the exit
 * status. */
int mpfs_tool_apply(const char *dir, const char *archive, const char *const *toplevel_order);

/* ---- the subcommands ---- */
int mpfs_tool_ls(int argc, char **argv);
int mpfs_tool_cat(int argc, char **argv);
int mpfs_tool_set(int argc, char **argv);
int mpfs_tool_rm(int argc, char **argv);
int mpfs_tool_mv(int argc, char **argv);
int mpfs_tool_mkdir(int argc, char **argv);
int mpfs_tool_unpack(int argc, char **argv);
int mpfs_tool_apply_cmd(int argc, char **argv);
int mpfs_tool_pack(int argc, char **argv);
int mpfs_tool_diff(int argc, char **argv);
int mpfs_tool_show(int argc, char **argv);
int mpfs_tool_check(int argc, char **argv);

#endif
