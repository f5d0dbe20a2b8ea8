/* fs/ when the disk runs out part way: a piece commit (a big compact array
 * edited in place, whose unchanged chunks are copied from the old archive)
 * that cannot write its temporary file, and edits whose changed chunks
 * spill to disk when that fails. The limit on file sizes (RLIMIT_FSIZE,
 * EFBIG) stands in for a full disk (ENOSPC): the same write fails at the
 * same byte, with no other process needed. tests/e2e/test_faults_pieces.py
 * does the same on a full tmpfs. */
#include "fs_env.h"

#include <signal.h>
#include <sys/resource.h>

#define MiB   (1u << 20)
#define CHUNK (1u << 16)

/* Files cannot grow past bytes from now on; the old limit in *was. */
static void limit_files(rlim_t bytes, struct rlimit *was)
{
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, was), 0);
	struct rlimit small = {.rlim_cur = bytes, .rlim_max = was->rlim_max};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
}

/* Element i of xtra/big.npy through handle fh (0: a fresh reader). */
static double element(struct env *e, uint64_t fh, uint64_t hdr, size_t i)
{
	uint64_t r = fh ? fh : fs_open(e, "/xtra/big.npy", O_RDONLY, false);
	double v;
	cr_assert_eq(mpfs_fs_read(e->fs, r, (char *)&v, 8, hdr + 8 * i), 8);
	if (!fh)
		fs_release(e, r);
	return v;
}

/* The archive's xtra/big data: element i is i / 2 but for the two given. */
static void expect_data(struct env *e, size_t n, size_t i, double a, size_t j, double b)
{
	struct arc arc;
	arc_load(&arc, e->archive);
	const struct mpfs_val *d = arc_must(&arc, "xtra/big/data");
	cr_assert_eq(d->len, n * 8);
	const uint8_t *p = arc.buf + d->off + d->hdr;
	for (size_t k = 0; k < n; k++) {
		double v, want = k == i ? a : k == j ? b : (double)k * 0.5;
		memcpy(&v, p + 8 * k, 8);
		cr_assert_eq(v, want, "element %zu is %g, expected %g", k, v, want);
	}
	cr_assert(mpfs_val_is(&arc.doc, arc_must(&arc, "after"), "kept"));
	arc_free(&arc);
}

/* A piece commit that cannot write its temporary file, at limit bytes
 * (64: not even the changed chunks; half the archive: part way through
 * copying the unchanged chunks): each flush fails with the real errno and
 * changes nothing; the writer keeps its edit, others read the archive;
 * with room again, the next flush commits exactly the edit. */
static void piece_commit_fails_at(rlim_t limit_of_archive_size_per_2)
{
	const size_t n = (12u << 20) / 8, i = 1000, j = n - 1;
	const double a = -1.0, b = -2.0;
	struct env e;
	struct arc before;
	struct rlimit was;
	uint64_t hdr;

	hdr = env_open_big(&e, n);
	arc_load(&before, e.archive);
	uint64_t w = fs_open(&e, "/xtra/big.npy", O_RDWR, false);
	fs_write(&e, w, &a, 8, hdr + 8 * i);
	fs_write(&e, w, &b, 8, hdr + 8 * j);
	limit_files(limit_of_archive_size_per_2 ? before.n / 2 : 64, &was);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EFBIG, "the real errno (log: %s)", last_log);
	cr_assert(strstr(last_log, "/xtra/big.npy") && strstr(last_log, strerror(EFBIG)),
		  "logged with the reason: %s", last_log);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EFBIG, "still failing");
	arc_unchanged(&before, e.archive, "failed piece commit");
	cr_assert_eq(stray_files(&e), 0, "no temporary file left");
	cr_assert_eq(element(&e, 0, hdr, j), (double)j * 0.5, "others read the archive");
	cr_assert_eq(element(&e, w, hdr, j), b, "the writer reads its edit");
	cr_assert_eq(element(&e, w, hdr, i), a);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), 0, "room again (log: %s)", last_log);
	fs_release(&e, w);
	expect_data(&e, n, i, a, j, b);
	cr_assert_eq(stray_files(&e), 0);
	arc_free(&before);
	env_close(&e);
}

Test(fs_faults, piece_commit_without_room_for_the_changed_chunks)
{
	piece_commit_fails_at(0);
}

Test(fs_faults, piece_commit_running_out_while_copying_the_pieces)
{
	piece_commit_fails_at(1);
}

/* The last close after a failed piece commit: close said it failed, so
 * the edit is not tried again behind the caller's back; it is dropped, and
 * the log says so. The file then reads as the archive holds it, and a new
 * edit commits once there is room. */
Test(fs_faults, last_close_after_a_failed_piece_commit_drops_the_edit_and_says_so)
{
	const size_t n = (12u << 20) / 8, j = n - 1;
	const double b = -2.0;
	struct env e;
	struct arc before;
	struct rlimit was;
	uint64_t hdr;

	hdr = env_open_big(&e, n);
	arc_load(&before, e.archive);
	uint64_t w = fs_open(&e, "/xtra/big.npy", O_RDWR, false);
	fs_write(&e, w, &b, 8, hdr + 8 * j);
	limit_files(before.n / 2, &was);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EFBIG);
	log_reset();
	fs_release(&e, w);
	cr_assert_eq(nlogs, 1, "the drop is logged");
	cr_assert(strstr(last_log, "/xtra/big.npy") && strstr(last_log, "dropped"), "log: %s",
		  last_log);
	arc_unchanged(&before, e.archive, "dropped edit");
	cr_assert_eq(element(&e, 0, hdr, j), (double)j * 0.5, "reads the archive again");
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
	w = fs_open(&e, "/xtra/big.npy", O_RDWR, false);
	fs_write(&e, w, &b, 8, hdr + 8 * 5);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), 0, "log: %s", last_log);
	fs_release(&e, w);
	expect_data(&e, n, 5, b, 5, b);
	arc_free(&before);
	env_close(&e);
}

/* 32 MiB of 'a' in a new file: every changed chunk in memory (the budget),
 * the next ones spill to disk. */
static uint64_t fill_budget(struct env *e, size_t extra)
{
	static char buf[1 << 20];
	uint64_t fh = fs_open(e, "/xtra/long", O_RDWR | O_CREAT, true);

	memset(buf, 'a', sizeof(buf));
	for (uint64_t off = 0; off < 32 * MiB + extra; off += sizeof(buf))
		fs_write(e, fh, buf, off + sizeof(buf) <= 32 * MiB + extra ? sizeof(buf) : extra,
			 off);
	return fh;
}

/* Whether [off, off + n) of fh reads c throughout. */
static bool reads_all(struct env *e, uint64_t fh, uint64_t off, size_t n, char c)
{
	char *p = malloc(n);
	bool all = mpfs_fs_read(e->fs, fh, p, n, off) == (long)n;
	for (size_t k = 0; all && k < n; k++)
		all = p[k] == c;
	free(p);
	return all;
}

/* A write whose first chunks land (in memory) and whose next chunk cannot
 * spill reports the bytes it wrote, as write(2) does: those bytes are in
 * the file (and the file's size covers them). Before, it failed as a whole
 * while the first chunks had changed, past the file's end too. */
Test(fs_faults, write_failing_part_way_reports_what_it_wrote)
{
	static char bs[2 * CHUNK];
	struct env e;
	struct stat st;
	struct rlimit was;

	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fill_budget(&e, 0);
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, 32 * MiB - 100), 0);
	limit_files(32 * MiB, &was);
	memset(bs, 'b', sizeof(bs));
	/* chunk 511 is in memory; chunk 512 would spill past the limit */
	cr_assert_eq(mpfs_fs_write(e.fs, fh, bs, sizeof(bs), 32 * MiB - CHUNK), CHUNK);
	cr_assert_eq(getattr(&e, "/xtra/long", &st), 0);
	cr_assert_eq(st.st_size, 32 * MiB, "the size covers the bytes written");
	cr_assert(reads_all(&e, fh, 32 * MiB - CHUNK, CHUNK, 'b'));
	cr_assert_eq(mpfs_fs_write(e.fs, fh, bs, CHUNK, 32 * MiB), -EFBIG, "nothing written");
	cr_assert_eq(getattr(&e, "/xtra/long", &st), 0);
	cr_assert_eq(st.st_size, 32 * MiB);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, 32 * MiB + CHUNK), 0);
	cr_assert(reads_all(&e, fh, 32 * MiB, CHUNK, '\0'), "past the end: zeros");
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, 0), 0);
	fs_release(&e, fh);
	env_close(&e);
}

/* An overwrite of a spilled chunk that the disk stops part way (btrfs and
 * quotas can refuse an overwrite; here the file-size limit falls inside
 * the chunk) reports the bytes it wrote, which are in the file, and
 * changes nothing after them. Before, it failed as a whole with those
 * bytes already changed. */
Test(fs_faults, overwrite_of_a_spilled_chunk_failing_part_way_reports_what_it_wrote)
{
	static char bs[1000];
	struct env e;
	struct stat st;
	struct rlimit was;

	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fill_budget(&e, 2 * CHUNK); /* chunks 512 and 513 spilled */
	limit_files(32 * MiB + 50, &was);
	memset(bs, 'b', sizeof(bs));
	cr_assert_eq(mpfs_fs_write(e.fs, fh, bs, sizeof(bs), 32 * MiB + 10), 40);
	cr_assert(reads_all(&e, fh, 32 * MiB + 10, 40, 'b'), "the bytes written");
	cr_assert(reads_all(&e, fh, 32 * MiB + 50, 2 * CHUNK - 50, 'a'), "nothing after them");
	cr_assert(reads_all(&e, fh, 32 * MiB - CHUNK, CHUNK + 10, 'a'), "nothing before them");
	cr_assert_eq(mpfs_fs_write(e.fs, fh, bs, sizeof(bs), 32 * MiB + 50), -EFBIG);
	cr_assert(reads_all(&e, fh, 32 * MiB + 50, 2 * CHUNK - 50, 'a'));
	cr_assert_eq(getattr(&e, "/xtra/long", &st), 0);
	cr_assert_eq(st.st_size, 32 * MiB + 2 * CHUNK);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
	cr_assert_eq(mpfs_fs_write(e.fs, fh, bs, sizeof(bs), 32 * MiB + 50), (long)sizeof(bs));
	cr_assert(reads_all(&e, fh, 32 * MiB + 10, 1040, 'b'));
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, 0), 0);
	fs_release(&e, fh);
	env_close(&e);
}

/* A truncation inside a spilled chunk writes nothing to the disk (the
 * chunk comes back into memory, its cut-off part zeroed there), so a full
 * disk cannot stop it part way: with no write to the spill file possible
 * it succeeds, and the cut part reads zero when the file grows again.
 * Before, it zeroed that part in the spill file, a write that can fail
 * after changing some of it. */
Test(fs_faults, truncate_inside_a_spilled_chunk_writes_nothing_to_disk)
{
	struct env e;
	struct stat st;
	struct rlimit was;

	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fill_budget(&e, 2 * CHUNK); /* chunks 512 and 513 spilled */
	limit_files(32 * MiB, &was);
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, 32 * MiB + 100), 0);
	cr_assert_eq(getattr(&e, "/xtra/long", &st), 0);
	cr_assert_eq(st.st_size, 32 * MiB + 100);
	cr_assert(reads_all(&e, fh, 32 * MiB - CHUNK, CHUNK + 100, 'a'), "the kept data is intact");
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, 32 * MiB + CHUNK), 0);
	cr_assert(reads_all(&e, fh, 32 * MiB + 100, CHUNK - 100, '\0'), "the cut part: zeros");
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, 0), 0);
	fs_release(&e, fh);
	env_close(&e);
}

/* An array file cut to a size its .npy header does not allow (`truncate
 * -s 1G big.npy`; a new file of 8 MiB of zeros) is refused: EINVAL, logged,
 * sticky until new data comes, decided from its first bytes. Before, the
 * whole of it was copied into a temporary file to be parsed, so on a disk
 * without room for that (here: files limited to 64 MiB) the refusal came
 * out as a failure to write (EFBIG, ENOSPC), not logged, tried again at
 * every fsync. */
Test(fs_faults, size_the_header_refuses_is_refused_before_it_is_copied)
{
	const size_t n = (12u << 20) / 8;
	struct env e;
	struct arc before;
	struct rlimit was;
	uint64_t hdr;

	hdr = env_open_big(&e, n);
	arc_load(&before, e.archive);
	limit_files(64 * MiB, &was);
	uint64_t w = fs_open(&e, "/xtra/big.npy", O_RDWR, false);
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, w, hdr + (1u << 30)), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EINVAL, "log: %s", last_log);
	cr_assert(strstr(last_log, "refused: NPY data is 1073741824 bytes"), "log: %s", last_log);
	cr_assert_eq(nlogs, 1);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EINVAL, "sticky");
	cr_assert_eq(nlogs, 1, "not tried again");
	fs_release(&e, w);

	uint64_t c = fs_open(&e, "/xtra/new.npy", O_RDWR | O_CREAT, true);
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, c, 8 * MiB), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, c), -EINVAL, "log: %s", last_log);
	cr_assert(strstr(last_log, "/xtra/new.npy: refused: not an NPY file"), "log: %s", last_log);
	fs_release(&e, c);
	arc_unchanged(&before, e.archive, "refused sizes");
	cr_assert_eq(stray_files(&e), 0);
	arc_free(&before);
	env_close(&e);
}

/* The same with -o raw: NAME.bin must hold exactly the array's bytes. */
Test(fs_faults, raw_size_that_does_not_fit_is_refused_before_it_is_copied)
{
	const size_t n = (12u << 20) / 8;
	struct mpfs_fs_opts o = {.raw = true, .log = test_log};
	struct mpfs_error err;
	struct env e;
	struct rlimit was;

	env_open_big(&e, n); /* (its .npy header does not matter here) */
	mpfs_fs_close(e.fs);
	cr_assert_eq(mpfs_fs_open(&e.fs, e.archive, &o, &err), 0, "%s", err.msg);
	limit_files(64 * MiB, &was);
	uint64_t w = fs_open(&e, "/xtra/big.bin", O_RDWR, false);
	cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, w, 1u << 30), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EINVAL, "log: %s", last_log);
	cr_assert(strstr(last_log, "refused: raw array of 12582912 bytes expected, got 1073741824"),
		  "log: %s", last_log);
	fs_release(&e, w);
	cr_assert_eq(stray_files(&e), 0);
	env_close(&e);
}
