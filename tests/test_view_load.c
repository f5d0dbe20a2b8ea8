/* fs/view.c under load and change: concurrent readers, memory and work per
 * entry at scale, lazy naming (concurrent, out of memory), and the archive
 * changed under the mapping. */
#define TU_WRAP_ALLOCS /* linked with --wrap=malloc,... (tests/meson.build) */
#include "view_env.h"

/* ---- threads ------------------------------------------------------------------------ */

struct reader {
	struct mpfs_view *v;
	uint32_t nnodes;
	uint64_t sum;
};

static void *read_everything(void *arg)
{
	struct reader *r = arg;
	char buf[4096];
	for (uint32_t id = r->nnodes; id-- > 0;) {
		struct stat st;
		if (mpfs_view_stat(r->v, id, &st) || mpfs_view_is_dir(r->v, id))
			continue;
		for (uint64_t off = 0;; off += sizeof(buf)) {
			long n = mpfs_view_read(r->v, id, buf, sizeof(buf), off);
			if (n <= 0)
				break;
			for (long i = 0; i < n; i++)
				r->sum = r->sum * 31 + (uint8_t)buf[i];
		}
		r->sum += (uint64_t)st.st_size;
	}
	return NULL;
}

static uint32_t count_entries(const struct mpfs_view *v, uint32_t id)
{
	uint32_t n = 1, c;
	if (!mpfs_view_is_dir(v, id))
		return 1;
	for (uint32_t i = 0; i < mpfs_view_nchildren(v, id); i++) {
		mpfs_view_child(v, id, i, &c);
		n += count_entries(v, c);
	}
	return n;
}

/* FUSE reads from many threads: content made on first use must come out
 * the same for all. */
Test(fs_view, concurrent_readers_agree)
{
	enum { T = 8 };
	pthread_t th[T];
	struct reader r[T];
	struct mpfs_view *v = open_fixture("tfidf_seed.mpk", false);
	uint32_t nnodes = 0;
	struct stat st;

	nnodes = count_entries(v, MPFS_ROOT_ID);
	cr_assert_gt(nnodes, 400);
	mpfs_view_close(v);

	v = open_fixture("tfidf_seed.mpk", false);
	/* ids are 0..nnodes-1 (inode numbers 1..nnodes) */
	cr_assert_eq(mpfs_view_stat(v, nnodes - 1, &st), 0);
	for (int i = 0; i < T; i++) {
		r[i] = (struct reader){.v = v, .nnodes = nnodes};
		cr_assert_eq(pthread_create(&th[i], NULL, read_everything, &r[i]), 0);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	for (int i = 1; i < T; i++)
		cr_assert_eq(r[i].sum, r[0].sum, "thread %d read something else", i);
	mpfs_view_close(v);
}

/* ---- scale: memory and work per entry ------------------------------------- */

/* Writes the archive in b (freed) to a temporary file whose path is kept
 * in *path (remove it and its directory with unlink_kept). */
static struct mpfs_view *open_kept(struct tb *b, char **path)
{
	char *dir = tu_temp_dir();
	cr_assert(asprintf(path, "%s/a.mpk", dir) > 0);
	free(dir);
	tu_write_file(*path, b->p, b->len);
	tb_free(b);
	return open_path(*path, false);
}

static void unlink_kept(char *path)
{
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
	free(path);
}

/* Issue 7, item 10: a list of N empty maps cost about 250 bytes per entry
 * before anything was listed (every directory named at open). Opening,
 * looking up and listing the list must now stay under 100 bytes per entry,
 * counting every byte allocated (freed or not). */
Test(fs_view, memory_per_entry_of_a_list_of_empty_maps, .timeout = 60)
{
	enum { N = 1000000 };
	struct tb b = {0};
	struct mpfs_view *v;
	struct mpfs_view_opts opts = {0};
	struct mpfs_error err;
	uint32_t id, c;
	char *path, *dir = tu_temp_dir();

	tb_map(&b, 2);
	tb_str(&b, "class_name");
	tb_str(&b, "Big");
	tb_str(&b, "l");
	tb_arr(&b, N);
	for (uint32_t i = 0; i < N; i++)
		tb_map(&b, 0);
	cr_assert(asprintf(&path, "%s/a.mpk", dir) > 0);
	tu_write_file(path, b.p, b.len);
	tb_free(&b);

	tu_track_allocs();
	cr_assert_eq(mpfs_view_open(&v, path, &opts, &err), 0, "%s", err.msg);
	size_t at_open = tu_allocs.total;
	cr_assert_eq(mpfs_view_lookup(v, "/l", &id), 0);
	cr_assert_eq(mpfs_view_nchildren(v, id), N);
	cr_assert_str_eq(mpfs_view_child(v, id, N - 1, &c), "999999");
	cr_assert_eq(mpfs_view_lookup(v, "/l/123456", &c), 0);
	cr_assert(mpfs_view_is_dir(v, c));
	struct stat st;
	cr_assert_eq(mpfs_view_stat(v, c, &st), 0);
	cr_assert_eq(st.st_nlink, 2);
	tu_allocs.on = false;
	cr_log_info("%zu bytes per entry to open, %zu to open and list", at_open / N,
		    tu_allocs.total / N);
	cr_assert_lt(at_open / N, 100, "%zu bytes per entry to open", at_open / N);
	cr_assert_lt(tu_allocs.total / N, 100, "%zu bytes per entry to open and list",
		     tu_allocs.total / N);
	mpfs_view_close(v);
	unlink(path);
	free(path);
	tu_rm_rf(dir);
	free(dir);
}

/* Names are made when a directory is first looked up or listed, from many
 * threads at once: all must see the same names, each made once. */
struct namer {
	struct mpfs_view *v;
	uint64_t sum;
};

static void *name_everything(void *arg)
{
	struct namer *r = arg;
	char path[64];
	uint32_t id, c;

	for (uint32_t i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/m/k%u/x%u", i, i % 7);
		cr_assert_eq(mpfs_view_lookup(r->v, path, &id), 0, "%s", path);
		r->sum = r->sum * 31 + id;
		snprintf(path, sizeof(path), "/m/k%u", (i * 37) % 200);
		cr_assert_eq(mpfs_view_lookup(r->v, path, &id), 0, "%s", path);
		for (uint32_t j = 0; j < mpfs_view_nchildren(r->v, id); j++)
			for (const char *s = mpfs_view_child(r->v, id, j, &c); *s; s++)
				r->sum = r->sum * 31 + (uint8_t)*s;
	}
	return NULL;
}

Test(fs_view, concurrent_lazy_naming)
{
	enum { T = 8 };
	pthread_t th[T];
	struct namer r[T];
	char key[16];
	struct tb b = {0};

	tb_map(&b, 1);
	tb_str(&b, "m");
	tb_map(&b, 200);
	for (uint32_t i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		tb_str(&b, key);
		tb_map(&b, 7);
		for (uint32_t j = 0; j < 7; j++) {
			snprintf(key, sizeof(key), "x%u", j);
			tb_str(&b, key);
			tb_uint(&b, j);
		}
	}
	struct mpfs_view *v = open_tb(&b, false);
	for (int i = 0; i < T; i++) {
		r[i] = (struct namer){.v = v};
		cr_assert_eq(pthread_create(&th[i], NULL, name_everything, &r[i]), 0);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	for (int i = 1; i < T; i++)
		cr_assert_eq(r[i].sum, r[0].sum, "thread %d saw other names", i);
	mpfs_view_close(v);
}

/* Naming a directory can run out of memory after the view is open: the
 * lookup says so, and the next one names it. */
Test(fs_view, lazy_naming_out_of_memory)
{
	struct mpfs_view *v = open_fixture("mlp_seed.mpk", false);
	uint32_t id;
	int rc;

	for (size_t k = 1;; k++) {
		cr_assert_lt(k, 1000, "never succeeds");
		tu_track_allocs();
		tu_allocs.fail_at = k;
		rc = mpfs_view_lookup(v, "/params/alpha", &id);
		tu_allocs.on = false;
		if (rc == 0)
			break;
		cr_assert_eq(rc, -ENOMEM, "allocation %zu failing: %d", k, rc);
	}
	char *text = content(v, "/params/alpha");
	cr_assert_str_eq(text, "0.0001\n");
	free(text);
	mpfs_view_close(v);
}

/* ---- the archive changed under the mapping ----------------------------------- */

/* Overwrites the archive at path with bytes at off, in place. */
static void poke(const char *path, long off, const char *hex)
{
	struct tb b = {0};
	FILE *f = fopen(path, "r+b");
	tb_hex(&b, hex);
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, off, SEEK_SET), 0);
	cr_assert_eq(fwrite(b.p, 1, b.len, f), b.len);
	cr_assert_eq(fclose(f), 0);
	tb_free(&b);
}

/* Issue 7, item 11: rewritten in place at the same size, an element of a
 * list (walked again from the mapping when first read) claimed 2 GiB, and
 * the walk read far past the mapping (a crash, or bytes of the heap served
 * as content). Every walk is now bounded by the mapping. */
Test(fs_view, rewritten_in_place_reads_stay_in_the_mapping)
{
	struct tb b = {0};
	char *path;

	/* {"class_name": "x", "weights": {"w": [[1.0, 2.0]]}, "l": ["ab", "cdefgh"]} */
	tb_map(&b, 3);
	tb_str(&b, "class_name");
	tb_str(&b, "x");
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "w");
	tb_arr(&b, 1);
	tb_arr(&b, 2);
	long w_at = (long)b.len;
	tb_f64(&b, 1.0);
	tb_f64(&b, 2.0);
	tb_str(&b, "l");
	tb_arr(&b, 2);
	tb_str(&b, "ab");
	long l_at = (long)b.len;
	tb_str(&b, "cdefgh");
	struct mpfs_view *v = open_kept(&b, &path);
	uint32_t l = id_of(v, "/l"), w = id_of(v, "/weights/w.npy");

	/* The second string, then the first float, now say: a str32 of 2 GiB. */
	struct stat before;
	cr_assert_eq(stat(path, &before), 0);
	poke(path, l_at, "db 7f ff ff ff");
	poke(path, w_at, "db 7f ff ff ff");
	/* A write moves mtime: what is still to be made is EIO. */
	struct timespec later[2] = {before.st_atim, {before.st_mtim.tv_sec + 1, 0}};
	cr_assert_eq(utimensat(AT_FDCWD, path, later, 0), 0);
	char buf[64];
	cr_assert_eq(mpfs_view_read(v, l, buf, sizeof(buf), 0), -EIO);
	/* With the mtime put back it cannot be told: reads stay inside the
	 * mapping all the same. */
	struct timespec back[2] = {before.st_atim, before.st_mtim};
	cr_assert_eq(utimensat(AT_FDCWD, path, back, 0), 0);
	char *text = content(v, "/l");
	cr_assert_str_eq(text, "[\"ab\", null]\n", "got %s", text);
	free(text);
	size_t len;
	char *npy = read_all(v, w, 7, &len);
	struct stat st;
	cr_assert_eq(mpfs_view_stat(v, w, &st), 0);
	cr_assert_eq(len, (size_t)st.st_size);
	free(npy);
	mpfs_view_close(v);
	unlink_kept(path);
}

/* Issue 7, item 12: listxattr read keys from the mapping without the
 * guard: with the archive cut short in place, mpfs died of SIGBUS. It now
 * reads nothing of the mapping, and every read of the mapping (names made
 * on first lookup, the key xattr, text, nested arrays, stat) gives -EIO. */
Test(fs_view, truncated_in_place_gives_eio_not_sigbus)
{
	struct tb b = {0};
	char *path, key[300];
	uint32_t id;
	struct stat st;
	char buf[256];

	/* Keys and values past the first pages, so that they lie in pages
	 * past the new end (which give SIGBUS, not zeros). */
	memset(key, 'k', sizeof(key) - 1);
	key[200] = '\0';
	uint8_t *pad = calloc(1, 3 * 4096);
	tb_map(&b, 5);
	tb_str(&b, "class_name");
	tb_str(&b, "x");
	tb_str(&b, "pad");
	tb_bin(&b, pad, 3 * 4096);
	free(pad);
	tb_str(&b, key);
	tb_str(&b, "pad");
	tb_str(&b, "m");
	tb_map(&b, 2);
	tb_str(&b, key);
	tb_arr(&b, 2);
	tb_uint(&b, 1);
	tb_uint(&b, 2);
	tb_str(&b, "b");
	tb_bin(&b, "xyz", 3);
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "w");
	tb_arr(&b, 2);
	tb_f64(&b, 1.0);
	tb_f64(&b, 2.0);
	struct mpfs_view *v = open_kept(&b, &path);
	char name[sizeof(key) + 8];
	snprintf(name, sizeof(name), "/%s", key);
	uint32_t top = id_of(v, name), w = id_of(v, "/weights/w.npy"); /* /m not yet named */
	cr_assert_eq(truncate(path, 20), 0);

	/* Listing needs only the model; the key itself is in the mapping. */
	cr_assert_eq(mpfs_view_listxattr(v, top, buf, sizeof(buf)), 14);
	cr_assert_str_eq(buf, "user.mpfs.key");
	cr_assert_eq(mpfs_view_getxattr(v, top, "user.mpfs.key", buf, sizeof(buf)), -EIO);
	cr_assert_eq(mpfs_view_stat(v, top, &st), -EIO);
	cr_assert_eq(mpfs_view_read(v, top, buf, sizeof(buf), 0), -EIO);
	cr_assert_eq(mpfs_view_read(v, w, buf, sizeof(buf), 0), -EIO);
	snprintf(name, sizeof(name), "/m/%s", key);
	cr_assert_eq(mpfs_view_lookup(v, name, &id), -EIO);
	cr_assert_eq(mpfs_view_lookup(v, "/weights", &id), 0, "named at open: the root");
	mpfs_view_close(v);
	unlink_kept(path);
}
