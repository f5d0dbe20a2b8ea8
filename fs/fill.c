/* Making a nested-list array's bytes (see fill.h).
 *
 * The decode itself is codec/'s (mpfs_array_fill_rows): a tight loop per
 * row. What costs besides it is the kernel's: a fresh 4 KiB page of the
 * output faults once per page, and in a virtual machine a fault costs
 * microseconds, so a 72 MB array took longer to fault in than to decode.
 * Rows are independent (each starts at its own validated offset), so
 * contiguous ranges of rows go to threads, and each thread's faults are
 * its own. */
#define _GNU_SOURCE /* sched_getaffinity */
#include "fs/fill.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fs/guard.h"

#define HUGE_PAGE ((uint64_t)2 << 20)

static uint64_t whole_huge_pages(uint64_t n)
{
	return (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

bool mpfs_fill_lasting(uint64_t n)
{
	return n >= HUGE_PAGE;
}

uint8_t *mpfs_fill_alloc(uint64_t n)
{
	uint64_t whole = whole_huge_pages(n);
	uint8_t *p, *start, *end;

	if (!mpfs_fill_lasting(n))
		return malloc(n ? n : 1);
	if (whole > SIZE_MAX - HUGE_PAGE)
		return NULL;
	/* A mapping of its own (never heap memory that malloc hands out
	 * again), aligned to a huge page: one more is mapped, and the ends
	 * beyond the aligned run are given back. */
	p = mmap(NULL, whole + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	if (p == MAP_FAILED)
		return NULL;
	start = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	end = p + whole + HUGE_PAGE;
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (end > start + whole)
		munmap(start + whole, (size_t)(end - (start + whole)));
	/* Whole huge pages: a tail in small pages would fault once per 4 KiB
	 * (a 3.9 MB array took 5 ms to fill, not 0.3). At most one huge page
	 * more is resident than the array needs. A kernel without THP
	 * refuses the advice, and the buffer works all the same. */
	madvise(start, whole, MADV_HUGEPAGE);
	return start;
}

void mpfs_fill_free(uint8_t *p, uint64_t n)
{
	if (!mpfs_fill_lasting(n))
		free(p);
	else if (p)
		munmap(p, whole_huge_pages(n));
}

static unsigned cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	return 1;
}

unsigned mpfs_fill_threads(const struct mpfs_array *a)
{
	uint64_t rows = mpfs_array_rows(a), by_size = a->nbytes / MPFS_FILL_THREAD_BYTES;
	unsigned n = cpus();

	if (n > MPFS_FILL_MAX_THREADS)
		n = MPFS_FILL_MAX_THREADS;
	if (n > by_size)
		n = (unsigned)by_size;
	if (n > rows)
		n = (unsigned)rows;
	return n ? n : 1;
}

struct share {
	const struct mpfs_doc *doc;
	const struct mpfs_array *a;
	uint64_t first, n; /* rows */
	uint8_t *out;
	pthread_t tid;
	bool started;
	int rc;
};

static int share_guarded(void *arg)
{
	struct share *s = arg;

	mpfs_array_fill_rows(s->doc, s->a, s->first, s->n, s->out);
	return 0;
}

static void *share_run(void *arg)
{
	struct share *s = arg;

	s->rc = mpfs_guard_run(share_guarded, s);
	return NULL;
}

int mpfs_fill_nested(const struct mpfs_doc *doc, const struct mpfs_array *a, uint8_t *out,
		     unsigned nthreads)
{
	struct share sh[MPFS_FILL_MAX_THREADS];
	uint64_t rows = mpfs_array_rows(a), row_bytes, first = 0;
	int rc = 0;

	if (rows == 0)
		return 0;
	if (nthreads == 0)
		nthreads = mpfs_fill_threads(a);
	if (nthreads > MPFS_FILL_MAX_THREADS)
		nthreads = MPFS_FILL_MAX_THREADS;
	if (nthreads > rows)
		nthreads = (unsigned)rows;
	row_bytes = a->nbytes / rows;
	/* Equal counts of rows: rows have equal counts of elements. */
	for (unsigned t = 0; t < nthreads; t++) {
		uint64_t n = rows / nthreads + (t < rows % nthreads);

		sh[t] = (struct share){
			.doc = doc, .a = a, .first = first, .n = n, .out = out + first * row_bytes};
		first += n;
	}
	for (unsigned t = 1; t < nthreads; t++)
		sh[t].started = pthread_create(&sh[t].tid, NULL, share_run, &sh[t]) == 0;
	share_run(&sh[0]);
	for (unsigned t = 1; t < nthreads; t++) {
		if (sh[t].started)
			pthread_join(sh[t].tid, NULL);
		else
			share_run(&sh[t]); /* no thread: do its share here */
	}
	for (unsigned t = 0; t < nthreads; t++)
		if (sh[t].rc)
			rc = sh[t].rc;
	return rc;
}
