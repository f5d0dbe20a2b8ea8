#include "mount/notify.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct item {
	struct item *next;
	char path[];
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	struct item *head, **tail;
	struct fuse *fuse;
	unsigned long queued, done; /* items ever queued, and handled */
	bool running, stop, can_wait;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&q.lock);
	for (;;) {
		while (!q.head && !q.stop)
			pthread_cond_wait(&q.cond, &q.lock);
		if (!q.head)
			break;
		struct item *it = q.head;
		q.head = it->next;
		if (!q.head)
			q.tail = &q.head;
		pthread_mutex_unlock(&q.lock);
		/* -ENOENT: the kernel never looked it up; nothing cached. */
		fuse_invalidate_path(q.fuse, it->path);
		free(it);
		pthread_mutex_lock(&q.lock);
		q.done++;
		pthread_cond_broadcast(&q.cond);
	}
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

int mpfs_notify_start(struct fuse *f, bool can_wait)
{
	q.fuse = f;
	q.can_wait = can_wait;
	q.head = NULL;
	q.tail = &q.head;
	q.stop = false;
	if (pthread_create(&q.thread, NULL, run, NULL))
		return -EAGAIN;
	q.running = true;
	return 0;
}

void mpfs_notify_changed(const char *path)
{
	size_t n = strlen(path) + 1;
	struct item *it;

	if (!q.running || !(it = malloc(sizeof(*it) + n)))
		return; /* at worst the kernel shows a stale size for a second */
	memcpy(it->path, path, n);
	it->next = NULL;
	pthread_mutex_lock(&q.lock);
	*q.tail = it;
	q.tail = &it->next;
	q.queued++;
	pthread_cond_broadcast(&q.cond);
	pthread_mutex_unlock(&q.lock);
}

void mpfs_notify_sync(void)
{
	if (!q.running || !q.can_wait)
		return;
	/* At most a second: the kernel may need request threads to drop pages,
	 * and if every one of them were waiting here, nothing would move. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	pthread_mutex_lock(&q.lock);
	unsigned long want = q.queued;
	while (q.done < want && !q.stop)
		if (pthread_cond_timedwait(&q.cond, &q.lock, &until))
			break;
	pthread_mutex_unlock(&q.lock);
}

void mpfs_notify_stop(void)
{
	if (!q.running)
		return;
	pthread_mutex_lock(&q.lock);
	q.stop = true;
	pthread_cond_broadcast(&q.cond);
	pthread_mutex_unlock(&q.lock);
	pthread_join(q.thread, NULL);
	q.running = false;
}
