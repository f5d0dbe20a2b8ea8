/* mpk._cmpk's MsgPack decoder: what its two files share. _cmpk_unpack.c
 * is the decoder; _cmpk_lock.c decodes the trees of an ensemble in
 * lockstep with the first one (see there). */
#ifndef MPK_CMPK_DEC_H
#define MPK_CMPK_DEC_H

#include "_cmpk.h"

#define CACHE_SLOTS   512 /* shared short str payloads; a power of two */
#define CACHE_MAX_LEN 32
#define WINDOW	      (256 * 1024) /* a file's bytes at hand */
#define BIG_BIN	      (64 * 1024)  /* a bin payload this long: a bytearray */
/* Lists are made at their full size up to this many elements and grown as
 * they are filled beyond: a claim that the bytes left allow but that is not
 * really there (a list of 100M elements in 100 MB of anything) then costs
 * memory in proportion to what is decoded, not 8 times the file's size up
 * front. (CPython caps a presized dict at 2^17 slots itself.) */
#define PRESIZE_MAX (1 << 17)
/* Maps are made at their full size up to this many entries (what a dict
 * of CPython's largest presize, 2^17 slots, holds) and grown as they are
 * filled beyond: a bigger map made at that size was resized when filled
 * past it, and ended a third larger than one grown from empty, as pickle
 * and python3-msgpack grow theirs (a 100k-term vocabulary: 5.2 MB, not
 * 3.8, and 350 more pages to fault in). */
#define PRESIZE_MAP_MAX ((1 << 17) / 3 * 2)

enum { LIST, MAP, TEXT_MAP }; /* containers */
enum { RAW, STR, BIN };	      /* payloads: an ext's data, a str's, a bin's */

struct dec {
	const unsigned char *start, *p, *end; /* the bytes at hand: a buffer, or a file's window */
	Py_ssize_t base;		      /* the input offset of start */
	Py_ssize_t size;       /* the input's length (a file's when the load began) */
	int fd;		       /* the file, or -1 */
	unsigned char *window; /* WINDOW bytes, for a file */
	PyObject *text_maps;   /* frozenset of bytes, or NULL */
	PyObject *ext_hook;
	PyObject *vocabs; /* the text maps that are vocabularies (take_map) */
	int depth;
	int in_key; /* decoding a map key: no bytearray, which is unhashable */
	PyObject
		*lock_keys; /* frozenset of bytes: lists under these keys go in lockstep, or NULL */
	PyObject *lock_hook; /* lockstep(first) -> None or (pattern, hole, make) */
	int mismatch;	     /* an item was not in lockstep: decode again without */
	PyObject *cache[CACHE_SLOTS];
};

static inline Py_ssize_t offset(const struct dec *d)
{
	return d->base + (d->p - d->start);
}

/* Bytes left in the input, at hand or still in the file: what every length
 * is checked against before anything is allocated for it. */
static inline Py_ssize_t left(const struct dec *d)
{
	return d->size - offset(d);
}

/* _cmpk_unpack.c: the next value (or part of one), or NULL with an
 * exception */
PyObject *dec_value(struct dec *d);
int dec_need(struct dec *d, size_t n);
Py_ssize_t dec_length(struct dec *d, int width);
PyObject *dec_fail(const struct dec *d, const char *what);
PyObject *dec_incomplete(const struct dec *d);
PyObject *dec_container(struct dec *d, Py_ssize_t n, int kind);
PyObject *dec_text_map(struct dec *d);
int dec_is_text_map(struct dec *d, PyObject *key);

/* _cmpk_lock.c */
int lock_is_list(struct dec *d, PyObject *key);
PyObject *lock_take_list(struct dec *d);
int lock_args(struct dec *d, PyObject *lockstep);
void lock_off(struct dec *d);

#endif
