/* Shared by the parts of test_fs_model (the model-based random test of fs/:
 * what it checks and how to run it is at the top of test_fs_model.c): the
 * model's types, and each part's functions and data that the others use. */
#ifndef MPFS_TESTS_FS_MODEL_H
#define MPFS_TESTS_FS_MODEL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>

#include "codec/value.h"
#include "fs/fs.h"
#include "fs/view.h"
#include "testutil.h"

#define MAXC	400 /* bytes of content, at most */
#define MAXN	40  /* nodes */
#define MAXHD	10  /* open handles */
#define MAXHID	16  /* hidden entries */
#define NAMEMAX 40  /* bytes of a name */
#define NPY_HDR 128

/* ---- the operations and features --------------------------------------- */

enum op {
	OP_OPEN,
	OP_CREATE,
	OP_WRITE,
	OP_TRUNC,
	OP_TRUNCP,
	OP_FLUSH,
	OP_FSYNC,
	OP_RELEASE,
	OP_READ,
	OP_CAT,
	OP_RENAME,
	OP_RENAMEDIR,
	OP_UNLINK,
	OP_MKDIR,
	OP_RMDIR,
	OP_ESCAPED,
	NOPS,
	F_SCRATCH = NOPS,
	F_MULTI,
	F_ORPHAN,
	F_SCRATCHKEYS,
	F_EMPTY,
	F_READER,
	F_REFUSE,
	F_FOLLOW,
	F_NEWRENAME,
	NMIX,
};

/* ---- values and contents ----------------------------------------------- */

struct bytes {
	size_t n;
	uint8_t p[MAXC];
};

enum kind { K_NONE, K_INT, K_FLOAT, K_STR, K_BIN, K_NPY };

struct val {
	enum kind k;
	int64_t i;
	double f;
	struct bytes b; /* STR: the string; BIN: payload; NPY: the whole file */
};

enum ck { C_TEXT, C_BIN, C_NPY }; /* what content a file gets written */
enum ntype { N_REAL, N_NEW, N_SCRATCH };
extern const char *const ntype_names[];

struct node {
	bool live, dir;
	int parent;
	char name[NAMEMAX];
	enum ntype t;
	struct val v; /* N_REAL files: the committed value */
	enum ck ck;
	bool has_buf;	  /* writers are open (always for scratch files) */
	struct bytes buf; /* the writers' buffer; a scratch file's content */
	bool dirty;	  /* changed since the last commit */
	bool cut;	  /* truncated (or opened with O_TRUNC) since the last flush */
	int nw, nr;	  /* open writers and readers */
	int hid;	  /* N_NEW created at a hidden name: that hidden entry */
	int odir;	  /* a scratch file moved out of a real entry: its place */
	char oname[NAMEMAX];
};

struct handle {
	bool live, w, orphan;
	uint64_t fh;
	int node;
};

struct hidden {
	bool live;
	int dir;
	char name[NAMEMAX];
	struct val v;
};

struct failure {
	char tag[160];
	char *log;
	size_t len;
	uint64_t seed;
	int step, start, count;
};

struct model {
	uint64_t seed, rng;
	int step, epoch_start, epoch_len;
	char *dir, *archive;
	struct mpfs_fs *fs;
	struct node n[MAXN];
	struct handle h[MAXHD];
	struct hidden hd[MAXHID];
	bool arc_dirty, final;
	struct stat arc_st;
	struct tb log;
	bool mix[NMIX];
	char mix_str[200];
	bool keep_going;
	jmp_buf jb;
};

extern struct failure failures[32];
extern int nfailures;

/* What judging content gives (test_fs_model_content.c). */
enum res { R_VALID, R_INVALID, R_UNKNOWN };

/* An allowed outcome of a commit (settle, test_fs_model_check.c). */
struct cand {
	bool any_rc;
	int rc;
	bool commit; /* a commit happens, and the value becomes v */
	struct val v;
};

/* ---- test_fs_model_tree.c: the model --------------------------------------------- */

void mlog(struct model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fail(struct model *m, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
unsigned rnd(struct model *m, unsigned n);
const char *show(const struct bytes *b, char *out, size_t cap);
bool is_scratch(const char *n);
bool ends_npy(const char *n);
void path_of(const struct model *m, int x, char *out, size_t cap);
void child_path(const struct model *m, int d, const char *name, char *out, size_t cap);
int child(const struct model *m, int d, const char *name);
int hidden_at(const struct model *m, int d, const char *name);
bool under(const struct model *m, int x, int d);
int nchildren(const struct model *m, int d);
bool hidden_under(const struct model *m, int d);
int weights_dir(const struct model *m);
int new_node(struct model *m);
int nlive(const struct model *m);
enum ck ck_of(enum kind k);
void closed_content(const struct model *m, int x, struct bytes *out);
int reader_sees(const struct model *m, int x, struct bytes out[2]);
void orphan(struct model *m, int x);
int pick_node(struct model *m, bool dir, bool any_type);
int pick_map_dir(struct model *m);
int pick_handle(struct model *m, int want_w, bool orphans);
int free_handle(struct model *m);

/* ---- test_fs_model_content.c: contents ------------------------------------------- */

void b_set(struct bytes *b, const void *p, size_t n);
bool b_eq(const struct bytes *a, const struct bytes *b);
void render(const struct val *v, struct bytes *out);
void npy_make(int s, const double *data, struct bytes *out);
enum res judge(const struct bytes *c, enum kind old, bool npy, struct val *out);
bool val_same(const struct val *a, const struct val *b);
void gen_text(struct model *m, struct bytes *out);
void gen_npy(struct model *m, struct bytes *out);
bool judgeable(const struct model *m, int x, const struct bytes *c);
void gen_write(struct model *m, int x, const struct bytes *c, uint64_t *off, struct bytes *w);
uint64_t gen_size(struct model *m, int x, const struct bytes *c);
void apply_write(struct bytes *c, uint64_t off, const struct bytes *w);
void apply_trunc(struct bytes *c, uint64_t size);

/* ---- test_fs_model_check.c: checks ----------------------------------------------- */

long read_all(struct model *m, uint64_t fh, struct bytes *out);
void check_tree(struct model *m);
void check_archive(struct model *m);
void resolve_buf(struct model *m, int x);
void settle(struct model *m, int x, int rc, const struct cand *c, int nc, const char *what);
int commit_cands(struct model *m, int x, const struct bytes *c, struct cand *out);

/* ---- test_fs_model_files.c: operations on files ---------------------------------- */

extern const char *const text_names[6];
extern const char *const npy_names[4];

void expect_rc(struct model *m, const char *what, long rc, long want);
bool op_open(struct model *m);
bool op_create(struct model *m);
bool op_write(struct model *m, bool trunc);
bool op_truncp(struct model *m);
bool op_flush(struct model *m, const char *name);
void do_close(struct model *m, int hi);
bool op_release(struct model *m);
bool op_read(struct model *m);
bool op_cat(struct model *m);

/* ---- test_fs_model_dirs.c: operations on names ----------------------------------- */

bool op_unlink(struct model *m);
bool op_mkdir(struct model *m);
bool op_rmdir(struct model *m);
bool op_rename(struct model *m);
bool op_renamedir(struct model *m);
bool op_escaped(struct model *m);

#endif
