/* mpfs: mount a model archive as a directory tree.
 *
 *   mpfs [options] ARCHIVE MOUNTPOINT
 *
 * Everything that can go wrong before mounting (a missing or malformed
 * archive, a bad mount point, no FUSE) is checked first and reported as one
 * line on stderr with exit status 1, so nothing is ever half mounted. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "fs/fs.h"
#include "mount/notify.h"
#include "mount/ops.h"

#ifndef MPFS_VERSION
#define MPFS_VERSION "0"
#endif

struct cli {
	const char *archive;
	const char *mountpoint;
	int raw, ro, foreground, debug, single, help, version;
};

enum { KEY_HELP, KEY_VERSION, KEY_FG, KEY_DEBUG, KEY_SINGLE, KEY_RO };

#define OPT(t, p, v)                                                                               \
	{                                                                                          \
		t, offsetof(struct cli, p), v                                                      \
	}

static const struct fuse_opt cli_opts[] = {
	OPT("raw", raw, 1),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FG),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-s", KEY_SINGLE),
	FUSE_OPT_END,
};

static int cli_proc(void *data, const char *arg, int key, struct fuse_args *args)
{
	struct cli *c = data;

	(void)args;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!c->archive)
			c->archive = arg;
		else if (!c->mountpoint)
			c->mountpoint = arg;
		else {
			fprintf(stderr, "mpfs: unexpected argument '%s' (see mpfs --help)\n", arg);
			return -1;
		}
		return 0;
	case KEY_HELP: c->help = 1; return 0;
	case KEY_VERSION: c->version = 1; return 0;
	case KEY_FG: c->foreground = 1; return 0;
	case KEY_DEBUG: c->debug = c->foreground = 1; return 1; /* fuse prints requests */
	case KEY_SINGLE: c->single = 1; return 0;
	case KEY_RO: c->ro = 1; return 1;
	default: return 1; /* other -o options go to libfuse */
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mpfs [options] ARCHIVE MOUNTPOINT\n"
		   "\n"
		   "Mount a MsgPack model archive as a directory tree.\n"
		   "Unmount with: fusermount3 -u MOUNTPOINT\n"
		   "\n"
		   "options:\n"
		   "    -h, --help       print this help and exit\n"
		   "    -V, --version    print the version and exit\n"
		   "    -f               stay in the foreground (log to stderr)\n"
		   "    -d               debug: foreground, print every FUSE request\n"
		   "    -s               single-threaded\n"
		   "    -o ro            read-only mount\n"
		   "    -o raw           arrays as NAME.bin (raw bytes), not NAME.npy\n"
		   "    -o OPT[,OPT...]  other FUSE mount options (allow_other, ...)\n");
}

/* One line on stderr for a mount point we cannot use, or 0. */
static int check_mountpoint(const char *path)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int entries = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "mpfs: mount point %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mpfs: mount point %s: not a directory\n", path);
		return -1;
	}
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "mpfs: mount point %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			entries++;
	closedir(d);
	if (entries) {
		fprintf(stderr, "mpfs: mount point %s: not empty\n", path);
		return -1;
	}
	return 0;
}

/* "-ofsname=ARCHIVE,..." with the separators in the path escaped. */
static char *fsname_opt(const char *archive)
{
	static const char pre[] = "-osubtype=mpfs,fsname=";
	char *s = malloc(sizeof(pre) + 2 * strlen(archive)), *p;

	if (!s)
		return NULL;
	p = stpcpy(s, pre);
	for (; *archive; archive++) {
		if (*archive == ',' || *archive == '\\')
			*p++ = '\\';
		*p++ = *archive;
	}
	*p = '\0';
	return s;
}

static bool to_syslog;

/* Refusals and failures: stderr in the foreground, syslog once daemonised. */
static void logline(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (to_syslog) {
		vsyslog(LOG_WARNING, fmt, ap);
	} else {
		fputs("mpfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* Tells ops.c the device number of the mount at mnt (the last mount there
 * in /proc/self/mountinfo), for its read-ahead. */
static void find_bdi(const char *mnt)
{
	unsigned major, minor, found = 0, fmaj = 0, fmin = 0;
	char line[PATH_MAX + 256], point[PATH_MAX];
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &major, &minor, point) == 3 &&
		    !strcmp(point, mnt)) {
			fmaj = major, fmin = minor;
			found = 1;
		}
	fclose(f);
	if (found)
		mpfs_ops_set_readahead_dev(fmaj, fmin);
}

static int run(struct fuse_args *args, const struct cli *c, struct mpfs_fs *v)
{
	struct fuse_loop_config *loop;
	struct fuse *fuse;
	int rc = 1;

	fuse = fuse_new(args, &mpfs_ops, sizeof(mpfs_ops), v);
	if (!fuse)
		return 1; /* libfuse said why */
	if (fuse_mount(fuse, c->mountpoint))
		goto out_destroy;
	find_bdi(c->mountpoint);
	if (fuse_set_signal_handlers(fuse_get_session(fuse)))
		goto out_unmount;
	if (!c->foreground) {
		openlog("mpfs", LOG_PID, LOG_USER);
		to_syslog = true;
	}
	if (fuse_daemonize(c->foreground))
		goto out_remove_handlers;
	if (mpfs_notify_start(fuse, !c->single))
		goto out_remove_handlers;
	if (c->single) {
		rc = fuse_loop(fuse);
	} else {
		loop = fuse_loop_cfg_create();
		rc = loop ? fuse_loop_mt(fuse, loop) : -1;
		fuse_loop_cfg_destroy(loop);
	}
	mpfs_notify_stop();
	/* Stopped by SIGTERM, SIGINT or SIGHUP is an ordinary unmount. */
	rc = rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
out_remove_handlers:
	fuse_remove_signal_handlers(fuse_get_session(fuse));
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cli c = {0};
	struct mpfs_fs_opts fo = {.log = logline, .changed = mpfs_notify_changed};
	struct mpfs_fs *v;
	struct mpfs_error err;
	char *fsname, mnt[PATH_MAX];
	int rc = 1;

	if (fuse_opt_parse(&args, &c, cli_opts, cli_proc))
		goto out_free_args;
	if (c.help || c.version) {
		if (c.help)
			usage(stdout);
		else
			printf("mpfs %s (libfuse %s)\n", MPFS_VERSION, fuse_pkgversion());
		rc = 0;
		goto out_free_args;
	}
	if (!c.archive || !c.mountpoint) {
		fprintf(stderr, "mpfs: missing %s (usage: mpfs [options] ARCHIVE MOUNTPOINT)\n",
			c.archive ? "MOUNTPOINT" : "ARCHIVE and MOUNTPOINT");
		goto out_free_args;
	}

	fo.raw = c.raw;
	fo.ro = c.ro;
	rc = mpfs_fs_open(&v, c.archive, &fo, &err);
	if (rc) {
		if (rc == -EINVAL && err.code)
			fprintf(stderr, "mpfs: %s: not a model archive: %s (at byte offset %llu)\n",
				c.archive, err.msg, (unsigned long long)err.off);
		else
			fprintf(stderr, "mpfs: %s: %s\n", c.archive,
				err.msg[0] ? err.msg : strerror(-rc));
		rc = 1;
		goto out_free_args;
	}
	rc = 1;
	if (check_mountpoint(c.mountpoint))
		goto out_close;
	/* Absolute, so unmounting works whatever the working directory. */
	if (!realpath(c.mountpoint, mnt)) {
		fprintf(stderr, "mpfs: mount point %s: %s\n", c.mountpoint, strerror(errno));
		goto out_close;
	}
	c.mountpoint = mnt;
	if (access("/dev/fuse", R_OK | W_OK)) {
		fprintf(stderr, "mpfs: no FUSE available: /dev/fuse: %s\n", strerror(errno));
		goto out_close;
	}

	/* An archive we cannot replace gives a read-only mount. And a
	 * read-only mpfs is a read-only mount to the kernel, whatever came
	 * after -o ro (a later rw): its files are opened without OPEN
	 * (mount/ops.c), so only the kernel can refuse opens for writing. */
	if (mpfs_fs_readonly(v) && fuse_opt_add_arg(&args, "-oro"))
		goto out_close;
	/* libfuse takes max_read from the mount options (see mount/ops.h). */
	if (fuse_opt_add_arg(&args, MPFS_READ_MAX_OPT))
		goto out_close;
	fsname = fsname_opt(c.archive);
	if (!fsname || fuse_opt_add_arg(&args, fsname)) {
		free(fsname);
		goto out_close;
	}
	free(fsname);
	rc = run(&args, &c, v);

out_close:
	mpfs_fs_close(v); /* commits what is still pending */
out_free_args:
	fuse_opt_free_args(&args);
	return rc;
}
