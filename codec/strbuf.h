/* A growable byte buffer: caller storage, _init/_destroy. */
#ifndef MPFS_CODEC_STRBUF_H
#define MPFS_CODEC_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct mpfs_strbuf {
	char *p; /* NUL-terminated once anything was added; owned */
	size_t len, cap;
	bool oom; /* sticky: an append failed; check once at the end */
};

static inline void mpfs_strbuf_init(struct mpfs_strbuf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

/* Frees the bytes; b may be reused after mpfs_strbuf_init. */
void mpfs_strbuf_destroy(struct mpfs_strbuf *b);
void mpfs_strbuf_add(struct mpfs_strbuf *b, const void *s, size_t n);
void mpfs_strbuf_puts(struct mpfs_strbuf *b, const char *s);
void mpfs_strbuf_printf(struct mpfs_strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
