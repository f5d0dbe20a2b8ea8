#include "fs/guard.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

static __thread sigjmp_buf *jump; /* the innermost guard of this thread */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)si, (void)uc;
	if (jump)
		siglongjmp(*jump, 1);
	/* Not ours: die of it as we would have. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	init_rc = sigaction(SIGBUS, &sa, NULL) ? -errno : 0;
}

int mpfs_guard_init(void)
{
	pthread_once(&once, install);
	return init_rc;
}

int mpfs_guard_run(int (*fn)(void *arg), void *arg)
{
	sigjmp_buf here;
	sigjmp_buf *volatile outer = jump;
	int rc;

	/* No need to save and restore the signal mask (a system call, on every
	 * read): the handler is installed with SA_NODEFER and an empty sa_mask,
	 * so jumping out of it leaves the mask as it was. */
	if (sigsetjmp(here, 0)) {
		jump = outer;
		return -EIO;
	}
	jump = &here;
	rc = fn(arg);
	jump = outer;
	return rc;
}

struct copy {
	void *dst;
	const void *src;
	size_t n;
};

static int do_copy(void *arg)
{
	struct copy *c = arg;
	memcpy(c->dst, c->src, c->n);
	return 0;
}

bool mpfs_guard_copy(void *dst, const void *src, size_t n)
{
	struct copy c = {dst, src, n};
	return mpfs_guard_run(do_copy, &c) == 0;
}
