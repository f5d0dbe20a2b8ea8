/* mpk._cmpk's MsgPack decoder, behind mpk.load.
 *
 * unpack(data, text_maps, ext_hook[, lockstep])  -> (object, bytes used, vocabularies, more)
 * unpack_fd(fd, text_maps, ext_hook[, lockstep]) -> the same, of a file
 *
 * lockstep (None, or (keys, hook)): lists of trees decoded as their first
 * item with holes; see "lockstep" below.
 *
 * unpack_fd reads the file through a window of WINDOW bytes and reads a
 * longer str or bin payload straight into its bytes object, as pickle
 * does: a load never holds a copy of the whole file (half the peak memory
 * of reading it first) nor page-faults one in. more says whether bytes
 * follow the object.
 *
 * The object is what msgpack.unpackb(data, raw=True, strict_map_key=False,
 * use_list=True) returns (python/mpk/_unpack.py falls back to exactly that
 * when this module is not built): nil, bool, int, float (float32 widened),
 * str and bin both as bytes, arrays as lists, maps as dicts (a later
 * duplicate key wins; an unhashable key is a TypeError), ext through
 * ext_hook(code, payload). Two differences, both for speed:
 *
 *  - short str payloads are shared: equal ones decode to one bytes object
 *    (bytes are immutable, so no caller can tell, and their hash is then
 *    computed once);
 *  - a map stored under a key named in text_maps (a frozenset of bytes;
 *    mpk passes {b"vocabulary_"}) has its str and bin keys decoded as UTF-8
 *    str where they are valid UTF-8, straight from the buffer. A 100k-term
 *    vocabulary then costs one dict instead of a bytes-keyed dict and a
 *    second, str-keyed one. Keys that are not valid UTF-8 stay bytes, for
 *    the caller to reject by name. The text maps whose keys are all str
 *    and whose values are the ints 0..n-1, each once, as in scikit-learn's
 *    vocabularies, are listed in vocabularies (checked while decoding).
 *
 * And one for memory: a bin payload of BIG_BIN bytes or more, but for a
 * map key, decodes to a bytearray, which mpk's array decoding (_arrays.py)
 * then takes over as the array's own memory, as pickle's protocol 5 does
 * with its buffers. Such an array is then allocated once, not as bytes
 * and then as the array's copy; in a process whose heap is trimmed after
 * each load, the copy faulted its memory in afresh every time (an MLP's
 * 1 MB of weights: 540 page faults, 7 ms a load; now none, 0.25 ms).
 *
 * Hostile input: every length is checked against the bytes left (in the
 * buffer, or in the file by its size when the load began) before anything
 * is allocated for it (an array of n elements needs n bytes, a map 2n),
 * nesting deeper than MAX_DEPTH containers (msgpack's own limit) is a
 * ValueError, and every error is a ValueError naming the offset (a failed
 * read: OSError). A file that changes while it is read gives an error, or
 * an object decoded from what was read; never a crash (read(2), no
 * mapping, so no SIGBUS). */

#include "_cmpk.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	PyObject *lock_keys; /* frozenset of bytes: lists under these keys go in lockstep, or NULL */
	PyObject *lock_hook; /* lockstep(first) -> None or (pattern, hole, make) */
	int mismatch;	     /* an item was not in lockstep: decode again without */
	PyObject *cache[CACHE_SLOTS];
};

static PyObject *decode(struct dec *d);

static Py_ssize_t offset(const struct dec *d)
{
	return d->base + (d->p - d->start);
}

/* Bytes left in the input, at hand or still in the file: what every length
 * is checked against before anything is allocated for it. */
static Py_ssize_t left(const struct dec *d)
{
	return d->size - offset(d);
}

static PyObject *fail(const struct dec *d, const char *what)
{
	PyErr_Format(PyExc_ValueError, "%s at byte %zd", what, offset(d));
	return NULL;
}

static PyObject *incomplete(const struct dec *d)
{
	return PyErr_Occurred() ? NULL
				: fail(d, "incomplete input"); /* (a failed read is an OSError) */
}

/* Up to want bytes of the file into dst: how many (fewer at its end), or -1
 * with OSError set. */
static Py_ssize_t read_some(int fd, unsigned char *dst, Py_ssize_t want)
{
	Py_ssize_t got = 0;
	while (got < want) {
		ssize_t r = read(fd, dst + got, (size_t)(want - got));
		if (r < 0 && errno == EINTR) {
			if (PyErr_CheckSignals() < 0)
				return -1;
			continue;
		}
		if (r < 0) {
			PyErr_SetFromErrno(PyExc_OSError);
			return -1;
		}
		if (r == 0)
			break;
		got += r;
	}
	return got;
}

/* Are n bytes at hand at d->p? A file's window is moved on and filled for
 * n up to WINDOW; a longer payload is read by take_bytes. */
static int need(struct dec *d, size_t n)
{
	size_t have = (size_t)(d->end - d->p);
	if (have >= n)
		return 1;
	if (d->fd < 0 || n > WINDOW)
		return 0;
	memmove(d->window, d->p, have);
	d->base = offset(d);
	d->start = d->p = d->window;
	d->end = d->window + have;
	Py_ssize_t got = read_some(d->fd, d->window + have, WINDOW - (Py_ssize_t)have);
	if (got < 0)
		return 0;
	d->end += got;
	return (size_t)(d->end - d->p) >= n;
}

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The payload length after a type byte with a 1, 2 or 4 byte length field;
 * -1 (error set) when the field or the payload runs past the input's end. */
static Py_ssize_t length(struct dec *d, int width)
{
	if (!need(d, (size_t)width)) {
		incomplete(d);
		return -1;
	}
	uint64_t n = be(d->p, width);
	d->p += width;
	if (n > (uint64_t)left(d)) {
		incomplete(d);
		return -1;
	}
	return (Py_ssize_t)n;
}

static uint32_t fnv1a(const unsigned char *p, Py_ssize_t n)
{
	uint32_t h = 2166136261u;
	for (Py_ssize_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* A payload longer than the window, of n bytes (at most left(d)): what is
 * at hand, then the rest read from the file straight into the bytes, or
 * into a bytearray. */
static PyObject *take_long(struct dec *d, Py_ssize_t n, int bytearray)
{
	Py_ssize_t have = d->end - d->p, at = offset(d);
	PyObject *b = bytearray ? PyByteArray_FromStringAndSize(NULL, n)
				: PyBytes_FromStringAndSize(NULL, n);
	if (!b)
		return NULL;
	char *dst = bytearray ? PyByteArray_AS_STRING(b) : PyBytes_AS_STRING(b);
	memcpy(dst, d->p, (size_t)have);
	d->base = at + have;
	d->start = d->p = d->end = d->window; /* the window is used up */
	Py_ssize_t got = read_some(d->fd, (unsigned char *)dst + have, n - have);
	if (got != n - have) {
		Py_DECREF(b);
		return incomplete(d);
	}
	d->base = at + n;
	return b;
}

/* A payload of n bytes (at most left(d)) as bytes: equal short str
 * payloads as one; a long bin payload, not a key, as a bytearray. */
static PyObject *take_bytes(struct dec *d, Py_ssize_t n, int payload)
{
	int bytearray = payload == BIN && n >= BIG_BIN && !d->in_key;
	if (!need(d, (size_t)n))
		return d->fd >= 0 && n > WINDOW ? take_long(d, n, bytearray) : incomplete(d);
	const unsigned char *p = d->p;
	d->p += n;
	if (bytearray)
		return PyByteArray_FromStringAndSize((const char *)p, n);
	if (payload != STR || n > CACHE_MAX_LEN)
		return PyBytes_FromStringAndSize((const char *)p, n);
	PyObject **slot = &d->cache[fnv1a(p, n) & (CACHE_SLOTS - 1)];
	if (*slot && PyBytes_GET_SIZE(*slot) == n &&
	    memcmp(PyBytes_AS_STRING(*slot), p, (size_t)n) == 0) {
		Py_INCREF(*slot);
		return *slot;
	}
	PyObject *b = PyBytes_FromStringAndSize((const char *)p, n);
	if (b) {
		Py_XSETREF(*slot, b);
		Py_INCREF(b);
	}
	return b;
}

static PyObject *take_ext(struct dec *d, Py_ssize_t n)
{
	if (n + 1 > left(d) || !need(d, 1))
		return incomplete(d);
	int code = (signed char)d->p[0];
	d->p++;
	PyObject *data = take_bytes(d, n, RAW);
	if (!data)
		return NULL;
	PyObject *r = PyObject_CallFunction(d->ext_hook, "iO", code, data);
	Py_DECREF(data);
	return r;
}

static PyObject *take_list(struct dec *d, Py_ssize_t n)
{
	if (n > left(d)) /* every element takes a byte at least */
		return incomplete(d);
	if (n > PRESIZE_MAX) { /* grown as it is filled: see PRESIZE_MAX */
		PyObject *list = PyList_New(0);
		for (Py_ssize_t i = 0; list && i < n; i++) {
			PyObject *v = decode(d);
			if (!v || PyList_Append(list, v) < 0)
				Py_CLEAR(list);
			Py_XDECREF(v);
		}
		return list;
	}
	PyObject *list = PyList_New(n);
	if (!list)
		return NULL;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *v = decode(d);
		if (!v) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SET_ITEM(list, i, v);
	}
	return list;
}

static int is_ascii(const unsigned char *p, Py_ssize_t n)
{
	unsigned char any = 0;
	for (Py_ssize_t i = 0; i < n; i++)
		any |= p[i];
	return any < 0x80;
}

/* A key of a text map: str or bin as str when valid UTF-8, else as usual. */
static PyObject *take_text_key(struct dec *d)
{
	if (!need(d, 1))
		return incomplete(d);
	unsigned char t = d->p[0];
	Py_ssize_t n;
	if ((t & 0xe0) == 0xa0) {
		d->p++;
		n = t & 0x1f;
	} else if (t == 0xd9 || t == 0xc4 || t == 0xda || t == 0xc5 || t == 0xdb || t == 0xc6) {
		d->p++;
		n = length(d, t == 0xd9 || t == 0xc4 ? 1 : t == 0xda || t == 0xc5 ? 2 : 4);
		if (n < 0)
			return NULL;
	} else {
		return decode(d);
	}
	PyObject *raw = NULL, *s;
	if (!need(d, (size_t)n) &&
	    !(raw = take_bytes(d, n, RAW))) /* (longer than a file's window) */
		return NULL;
	/* need() may have moved the window: d->p is read only now */
	const unsigned char *p = raw ? (const unsigned char *)PyBytes_AS_STRING(raw) : d->p;
	if (is_ascii(p, n)) { /* most terms: no decoding to do */
		s = PyUnicode_New(n, 127);
		if (s)
			memcpy(PyUnicode_DATA(s), p, (size_t)n);
	} else {
		s = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
	}
	if (s || !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
		if (!raw)
			d->p += n;
		Py_XDECREF(raw);
		return s;
	}
	PyErr_Clear(); /* not UTF-8: the key stays bytes */
	return raw ? raw : take_bytes(d, n, RAW);
}

/* Is the next value a map stored under a name in text_maps? */
static int is_text_map(struct dec *d, PyObject *key)
{
	unsigned char t = need(d, 1) ? d->p[0] : 0;
	if (!d->text_maps || !PyBytes_CheckExact(key) ||
	    !((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf))
		return 0;
	return PySet_Contains(d->text_maps, key);
}

static PyObject *take_container(struct dec *d, Py_ssize_t n, int kind);

/* The map is_text_map found next, its keys as text (take_container). */
static PyObject *take_text_map(struct dec *d)
{
	unsigned char t = *d->p++;
	Py_ssize_t n = (t & 0xf0) == 0x80 ? t & 0x0f : length(d, t == 0xde ? 2 : 4);
	return n < 0 ? NULL : take_container(d, n, TEXT_MAP);
}

/* Is the next value a list stored under a name in lock_keys? */
static int is_lock_list(struct dec *d, PyObject *key)
{
	unsigned char t = need(d, 1) ? d->p[0] : 0;
	if (!d->lock_keys || !PyBytes_CheckExact(key) ||
	    !((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd))
		return 0;
	return PySet_Contains(d->lock_keys, key);
}

static PyObject *take_lock_list(struct dec *d);

/* Does entry (k, v) of a text map of n entries keep it a vocabulary: a str
 * key, an int value in [0, n) not seen before (seen: n bits)? */
static int vocab_entry(PyObject *k, PyObject *v, Py_ssize_t n, unsigned char *seen)
{
	if (!PyUnicode_CheckExact(k) || !PyLong_CheckExact(v))
		return 0;
	long long i = PyLong_AsLongLong(v);
	if (i == -1 && PyErr_Occurred()) {
		PyErr_Clear(); /* beyond 64 bits: not an index */
		return 0;
	}
	if (i < 0 || i >= n || seen[i / 8] & 1 << i % 8)
		return 0;
	seen[i / 8] |= (unsigned char)(1 << i % 8);
	return 1;
}

static PyObject *take_map(struct dec *d, Py_ssize_t n, int text_keys)
{
	if (n > left(d) / 2) /* a key and a value: two bytes at least */
		return incomplete(d);
	PyObject *map = n <= PRESIZE_MAP_MAX ? _PyDict_NewPresized(n) : PyDict_New();
	unsigned char *seen = text_keys ? PyMem_Calloc((size_t)n / 8 + 1, 1) : NULL;
	int vocab = seen != NULL;
	if (!map || (text_keys && !seen))
		goto fail;
	for (Py_ssize_t i = 0; i < n; i++) {
		d->in_key++;
		PyObject *k = text_keys ? take_text_key(d) : decode(d);
		d->in_key--;
		if (!k)
			goto fail;
		int text = is_text_map(d, k), lock = text ? 0 : is_lock_list(d, k);
		PyObject *v = text > 0	  ? take_text_map(d)
			      : lock > 0  ? take_lock_list(d)
			      : text == 0 && lock == 0 ? decode(d)
						       : NULL;
		if (!v || PyDict_SetItem(map, k, v) < 0) {
			Py_DECREF(k);
			Py_XDECREF(v);
			goto fail;
		}
		vocab = vocab && vocab_entry(k, v, n, seen);
		Py_DECREF(k);
		Py_DECREF(v);
	}
	/* every value an index once and no key twice: a vocabulary, checked here
	 * while its entries are in the cache (a second pass cost 4x as much in a
	 * process whose heap is fragmented) */
	if (vocab && PyDict_GET_SIZE(map) == n && PyList_Append(d->vocabs, map) < 0)
		goto fail;
	PyMem_Free(seen);
	return map;
fail:
	Py_XDECREF(map);
	PyMem_Free(seen);
	return PyErr_Occurred() ? NULL : PyErr_NoMemory();
}

static PyObject *take_container(struct dec *d, Py_ssize_t n, int kind)
{
	if (++d->depth > MAX_DEPTH) {
		d->depth--;
		return fail(d, "nested too deeply");
	}
	PyObject *r = kind == LIST ? take_list(d, n) : take_map(d, n, kind == TEXT_MAP);
	d->depth--;
	return r;
}

/* ---- lockstep: the trees of an ensemble
 *
 * A list under a key in lock_keys (mpk passes {b"estimators_"}) of at least
 * LOCK_MIN items whose first item is a map is offered to lock_hook, which
 * answers None or (pattern, hole, make): the first item with the parts
 * that may differ from item to item replaced by hole (for a decision tree,
 * its parameters' values, its node count and depth, its arrays' shapes
 * and data). Every later item is then decoded in lockstep with pattern:
 * the same containers with the same sizes, the same keys in the same
 * order, scalars identical (as mpk_same_bits compares them), and where
 * pattern has hole, whatever value is there, decoded as usual into a tuple
 * of those values, which goes to each(tuple) when the hook gave one (mpk
 * builds the tree from it there, while its arrays are in the cache, and
 * they are freed before the next tree is read). The list of the first item
 * and what each made of the others goes to make(list, offsets), offsets
 * the n + 1 input offsets where the items begin and the last one ends (to
 * read an item again), and make's result stands for the list. No map is
 * built for the parts that are the first item's, and none for a tree's
 * arrays: only its shapes and data.
 *
 * Fixed scalars are compared without decoding them where they are nil, a
 * bool, a positive fixint, or a str or bin as long as the pattern's bytes
 * (lock_same_raw): those are the keys, class names and dtype strings that
 * make up most of a tree; anything else is decoded and compared.
 *
 * An item that is not in lockstep (a list of unlike estimators) sets
 * mismatch: the whole object is then decoded again without lockstep (from
 * the start of the buffer, or of the file: only a file that can seek goes
 * in lockstep), so the result is always one of the two decodings. */

#define LOCK_MIN 4

static int lock_mismatch(struct dec *d)
{
	d->mismatch = 1;
	fail(d, "not in lockstep");
	return -1;
}

/* The size of the container at d->p if it is a map (want_map) or a list,
 * consumed; -1 with an exception when it is not. */
static Py_ssize_t lock_header(struct dec *d, int want_map)
{
	if (!need(d, 1)) {
		incomplete(d);
		return -1;
	}
	unsigned char t = d->p[0];
	int fix = want_map ? (t & 0xf0) == 0x80 : (t & 0xf0) == 0x90;
	int w16 = want_map ? t == 0xde : t == 0xdc, w32 = want_map ? t == 0xdf : t == 0xdd;
	if (!fix && !w16 && !w32)
		return lock_mismatch(d);
	d->p++;
	Py_ssize_t n = fix ? t & 0x0f : length(d, w16 ? 2 : 4);
	/* refused where take_list and take_map refuse it */
	if (n > (want_map ? left(d) / 2 : left(d))) {
		incomplete(d);
		return -1;
	}
	return n;
}

static int lock_match(struct dec *d, PyObject *pat, PyObject *hole, PyObject *caps);

/* The common fixed scalars of a tree, compared without decoding them: 1
 * when the next value is nil, a bool, a positive fixint or a str or bin
 * payload at hand that decodes to a value identical to pat (consumed); -1
 * on a read error; 0 when unsure (nothing consumed: decode and compare). */
static int lock_same_raw(struct dec *d, PyObject *pat)
{
	if (!need(d, 1))
		return PyErr_Occurred() ? -1 : 0;
	unsigned char t = d->p[0];
	if (t == 0xc0 || t == 0xc2 || t == 0xc3) {
		if (pat != (t == 0xc0 ? Py_None : t == 0xc2 ? Py_False : Py_True))
			return 0;
		d->p++;
		return 1;
	}
	if (t <= 0x7f) {
		if (!PyLong_CheckExact(pat) || PyLong_AsLong(pat) != t)
			return PyErr_Occurred() ? (PyErr_Clear(), 0) : 0;
		d->p++;
		return 1;
	}
	if (!PyBytes_CheckExact(pat))
		return 0;
	Py_ssize_t n = PyBytes_GET_SIZE(pat), head;
	if ((t & 0xe0) == 0xa0 && (t & 0x1f) == n)
		head = 1;
	else if ((t == 0xd9 || t == 0xc4) && n <= 0xff && need(d, 2) && d->p[1] == n)
		head = 2;
	else
		return PyErr_Occurred() ? -1 : 0;
	if (!need(d, (size_t)(head + n)))
		return PyErr_Occurred() ? -1 : 0;
	if (memcmp(d->p + head, PyBytes_AS_STRING(pat), (size_t)n))
		return 0;
	d->p += head + n;
	return 1;
}

/* The value under key k in lockstep with pattern value pv; a map under a
 * key in text_maps or a list under one in lock_keys only into a hole, and
 * decoded there as take_map decodes it. */
static int lock_value(struct dec *d, PyObject *k, PyObject *pv, PyObject *hole, PyObject *caps)
{
	int text = is_text_map(d, k), lock = text ? 0 : is_lock_list(d, k);
	if (text < 0 || lock < 0)
		return -1;
	if (!text && !lock)
		return lock_match(d, pv, hole, caps);
	if (pv != hole)
		return lock_mismatch(d);
	PyObject *v = text ? take_text_map(d) : take_lock_list(d);
	int r = v ? PyList_Append(caps, v) : -1;
	Py_XDECREF(v);
	return r;
}

/* The next object decoded in lockstep with pattern (see above): 0, its
 * hole values appended to caps; -1 with an exception (mismatch set when
 * it is not in lockstep). */
static int lock_match(struct dec *d, PyObject *pat, PyObject *hole, PyObject *caps)
{
	if (pat == hole) {
		PyObject *v = decode(d);
		int r = v ? PyList_Append(caps, v) : -1;
		Py_XDECREF(v);
		return r;
	}
	int is_map = PyDict_CheckExact(pat);
	if (!is_map && !PyList_CheckExact(pat)) { /* a scalar: compared raw, or decoded */
		int same = lock_same_raw(d, pat);
		if (same)
			return same < 0 ? -1 : 0;
		PyObject *v = decode(d);
		if (!v)
			return -1;
		same = mpk_same_bits(v, pat, 0);
		Py_DECREF(v);
		return same < 0 ? -1 : same ? 0 : lock_mismatch(d);
	}
	Py_ssize_t n = lock_header(d, is_map);
	if (n < 0)
		return -1;
	if (n != (is_map ? PyDict_GET_SIZE(pat) : PyList_GET_SIZE(pat)))
		return lock_mismatch(d);
	if (++d->depth > MAX_DEPTH) {
		d->depth--;
		fail(d, "nested too deeply");
		return -1;
	}
	int r = 0;
	if (is_map) {
		Py_ssize_t pos = 0;
		PyObject *pk, *pv;
		while (!r && PyDict_Next(pat, &pos, &pk, &pv)) {
			int same = lock_same_raw(d, pk);
			PyObject *k = NULL;
			if (!same) { /* decoded, then compared */
				d->in_key++;
				k = decode(d);
				d->in_key--;
				same = k ? mpk_same_bits(k, pk, 0) : -1;
			}
			/* the key as decoded: pk itself when identical */
			r = same < 0 ? -1 : same ? lock_value(d, k ? k : pk, pv, hole, caps) : lock_mismatch(d);
			Py_XDECREF(k);
		}
	} else {
		for (Py_ssize_t i = 0; !r && i < n; i++)
			r = lock_match(d, PyList_GET_ITEM(pat, i), hole, caps);
	}
	d->depth--;
	return r;
}

/* Items 1..n-1 of a list of n, after its first (which began at offset
 * start), in lockstep with spec's pattern, into list, each given to spec's
 * each if it has one; then spec's make(list, offsets), offsets the n + 1
 * input offsets where the items begin and the last one ends. */
static PyObject *lock_items(struct dec *d, PyObject *list, Py_ssize_t n, PyObject *spec,
			   Py_ssize_t start)
{
	Py_ssize_t m = PyTuple_CheckExact(spec) ? PyTuple_GET_SIZE(spec) : 0;
	PyObject *each = m == 4 ? PyTuple_GET_ITEM(spec, 2) : NULL;
	if ((m != 3 && m != 4) || !PyCallable_Check(PyTuple_GET_ITEM(spec, m - 1)) ||
	    (each && !PyCallable_Check(each))) {
		PyErr_SetString(PyExc_TypeError,
				"lockstep must give None or (pattern, hole[, each], make)");
		return NULL;
	}
	PyObject *pat = PyTuple_GET_ITEM(spec, 0), *hole = PyTuple_GET_ITEM(spec, 1), *r = NULL;
	PyObject *offsets = PyList_New(n + 1), *o = PyLong_FromSsize_t(start);
	if (!offsets || !o)
		goto out;
	PyList_SET_ITEM(offsets, 0, o);
	for (Py_ssize_t i = 1; i < n; i++) {
		if (!(o = PyLong_FromSsize_t(offset(d))))
			goto out;
		PyList_SET_ITEM(offsets, i, o);
		PyObject *caps = PyList_New(0), *t = NULL;
		if (caps && lock_match(d, pat, hole, caps) == 0)
			t = PyList_AsTuple(caps);
		Py_XDECREF(caps);
		if (t && each) /* its holes, while they are in the cache */
			Py_SETREF(t, PyObject_CallOneArg(each, t));
		if (!t)
			goto out;
		PyList_SET_ITEM(list, i, t);
	}
	if (!(o = PyLong_FromSsize_t(offset(d))))
		goto out;
	PyList_SET_ITEM(offsets, n, o);
	r = PyObject_CallFunctionObjArgs(PyTuple_GET_ITEM(spec, m - 1), list, offsets, NULL);
out:
	Py_XDECREF(offsets); /* a list part filled: PyList_New's NULLs are fine */
	return r;
}

/* The list is_lock_list found next: in lockstep when lock_hook says so. */
static PyObject *take_lock_list(struct dec *d)
{
	unsigned char t = *d->p++;
	Py_ssize_t n = (t & 0xf0) == 0x90 ? t & 0x0f : length(d, t == 0xdc ? 2 : 4);
	if (n < 0)
		return NULL;
	if (n < LOCK_MIN || n > PRESIZE_MAX || n > left(d))
		return take_container(d, n, LIST);
	if (++d->depth > MAX_DEPTH) {
		d->depth--;
		return fail(d, "nested too deeply");
	}
	Py_ssize_t start = offset(d);
	PyObject *list = PyList_New(n), *first = list ? decode(d) : NULL, *spec = NULL, *r = NULL;
	if (!first)
		goto out;
	PyList_SET_ITEM(list, 0, first);
	spec = PyDict_CheckExact(first) ? PyObject_CallOneArg(d->lock_hook, first) : Py_NewRef(Py_None);
	if (!spec)
		goto out;
	if (spec != Py_None) {
		r = lock_items(d, list, n, spec, start);
		goto out;
	}
	for (Py_ssize_t i = 1; i < n; i++) {
		PyObject *v = decode(d);
		if (!v)
			goto out;
		PyList_SET_ITEM(list, i, v);
	}
	r = Py_NewRef(list);
out:
	d->depth--;
	Py_XDECREF(spec);
	Py_XDECREF(list); /* a list part filled: PyList_New's NULLs are fine */
	return r;
}

static PyObject *take_int(struct dec *d, int width, int is_signed)
{
	if (!need(d, (size_t)width))
		return incomplete(d);
	uint64_t v = be(d->p, width);
	d->p += width;
	if (!is_signed)
		return PyLong_FromUnsignedLongLong(v);
	int shift = 64 - 8 * width; /* sign-extend */
	return PyLong_FromLongLong((long long)(v << shift) >> shift);
}

static PyObject *take_float(struct dec *d, int width)
{
	if (!need(d, (size_t)width))
		return incomplete(d);
	uint64_t v = be(d->p, width);
	d->p += width;
	if (width == 4) {
		uint32_t u = (uint32_t)v;
		float f;
		memcpy(&f, &u, sizeof f);
		return PyFloat_FromDouble((double)f);
	}
	double x;
	memcpy(&x, &v, sizeof x);
	return PyFloat_FromDouble(x);
}

static PyObject *decode(struct dec *d)
{
	if (!need(d, 1))
		return incomplete(d);
	unsigned char t = *d->p++;
	Py_ssize_t n;
	if (t <= 0x7f)
		return PyLong_FromLong(t);
	if (t >= 0xe0)
		return PyLong_FromLong((signed char)t);
	if (t <= 0x8f)
		return take_container(d, t & 0x0f, MAP);
	if (t <= 0x9f)
		return take_container(d, t & 0x0f, LIST);
	if (t <= 0xbf) {
		n = t & 0x1f;
		return take_bytes(d, n, STR);
	}
	switch (t) {
	case 0xc0: Py_RETURN_NONE;
	case 0xc2: Py_RETURN_FALSE;
	case 0xc3: Py_RETURN_TRUE;
	case 0xc4:
	case 0xc5:
	case 0xc6: /* bin 8/16/32 */
		n = length(d, 1 << (t - 0xc4));
		return n < 0 ? NULL : take_bytes(d, n, BIN);
	case 0xc7:
	case 0xc8:
	case 0xc9: /* ext 8/16/32 */
		n = length(d, 1 << (t - 0xc7));
		return n < 0 ? NULL : take_ext(d, n);
	case 0xca: return take_float(d, 4);
	case 0xcb: return take_float(d, 8);
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf: return take_int(d, 1 << (t - 0xcc), 0);
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: return take_int(d, 1 << (t - 0xd0), 1);
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8: /* fixext 1..16 */ return take_ext(d, 1 << (t - 0xd4));
	case 0xd9:
	case 0xda:
	case 0xdb: /* str 8/16/32 */
		n = length(d, 1 << (t - 0xd9));
		return n < 0 ? NULL : take_bytes(d, n, STR);
	case 0xdc:
	case 0xdd: /* array 16/32 */
		n = length(d, t == 0xdc ? 2 : 4);
		return n < 0 ? NULL : take_container(d, n, LIST);
	case 0xde:
	case 0xdf: /* map 16/32 */
		n = length(d, t == 0xde ? 2 : 4);
		return n < 0 ? NULL : take_container(d, n, MAP);
	default: /* 0xc1: never used */ d->p--; return fail(d, "invalid MsgPack type byte 0xc1");
	}
}

/* Decodes one object from d's input: (object, bytes used, vocabularies,
 * whether more bytes follow it). */
static PyObject *run(struct dec *d, PyObject *text_maps, PyObject *ext_hook)
{
	if (text_maps != Py_None && !PyFrozenSet_CheckExact(text_maps)) {
		PyErr_SetString(PyExc_TypeError, "text_maps must be a frozenset or None");
		return NULL;
	}
	d->text_maps = text_maps == Py_None ? NULL : text_maps;
	d->ext_hook = ext_hook;
	d->vocabs = PyList_New(0);
	PyObject *obj = d->vocabs ? decode(d) : NULL, *r = NULL;
	int more = obj && need(d, 1); /* a byte after the object (a file reads one) */
	if (obj && !PyErr_Occurred())
		r = Py_BuildValue("(NnOO)", obj, offset(d), d->vocabs, more ? Py_True : Py_False);
	else
		Py_XDECREF(obj);
	Py_XDECREF(d->vocabs);
	for (int i = 0; i < CACHE_SLOTS; i++)
		Py_CLEAR(d->cache[i]);
	return r;
}

/* The lockstep argument: None, or (keys, hook) with keys a frozenset.
 * 0, or -1 with an exception. */
static int lock_args(struct dec *d, PyObject *lockstep)
{
	if (lockstep == Py_None)
		return 0;
	if (!PyTuple_CheckExact(lockstep) || PyTuple_GET_SIZE(lockstep) != 2 ||
	    !PyFrozenSet_CheckExact(PyTuple_GET_ITEM(lockstep, 0)) ||
	    !PyCallable_Check(PyTuple_GET_ITEM(lockstep, 1))) {
		PyErr_SetString(PyExc_TypeError, "lockstep must be None or (frozenset, callable)");
		return -1;
	}
	d->lock_keys = PyTuple_GET_ITEM(lockstep, 0);
	d->lock_hook = PyTuple_GET_ITEM(lockstep, 1);
	return 0;
}

/* After an item not in lockstep: the error dropped, lockstep off. */
static void lock_off(struct dec *d)
{
	PyErr_Clear();
	d->lock_keys = d->lock_hook = NULL;
	d->mismatch = d->depth = d->in_key = 0;
}

PyObject *mpk_unpack(PyObject *self, PyObject *args)
{
	(void)self;
	Py_buffer buf;
	PyObject *text_maps, *ext_hook, *lockstep = Py_None;
	if (!PyArg_ParseTuple(args, "y*OO|O:unpack", &buf, &text_maps, &ext_hook, &lockstep))
		return NULL;
	struct dec *d = PyMem_Calloc(1, sizeof *d);
	PyObject *r = NULL;
	if (d && lock_args(d, lockstep) == 0) {
		for (int again = 0; !r && again < 2; again++) {
			d->start = d->p = buf.buf;
			d->end = d->start + buf.len;
			d->size = buf.len;
			d->fd = -1;
			r = run(d, text_maps, ext_hook);
			if (r || !d->mismatch)
				break;
			lock_off(d);
		}
	} else if (!d) {
		PyErr_NoMemory();
	}
	PyMem_Free(d);
	PyBuffer_Release(&buf);
	return r;
}

PyObject *mpk_unpack_fd(PyObject *self, PyObject *args)
{
	(void)self;
	int fd;
	PyObject *text_maps, *ext_hook, *lockstep = Py_None;
	struct stat st;
	if (!PyArg_ParseTuple(args, "iOO|O:unpack_fd", &fd, &text_maps, &ext_hook, &lockstep))
		return NULL;
	if (fstat(fd, &st) < 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	/* where the object starts, to decode it again (not in lockstep): only
	 * a regular file goes in lockstep */
	off_t at = S_ISREG(st.st_mode) ? lseek(fd, 0, SEEK_CUR) : -1;
	struct dec *d = PyMem_Calloc(1, sizeof *d);
	unsigned char *window = PyMem_Malloc(WINDOW);
	PyObject *r = NULL;
	if (d && window && (at < 0 || lock_args(d, lockstep) == 0)) {
		for (int again = 0; again < 2; again++) {
			d->start = d->p = d->end = d->window = window;
			d->base = 0;
			d->fd = fd;
			/* the length to check claims against: a regular file's size, or
			 * for a pipe whatever can be addressed (lengths then fail on
			 * reading) */
			d->size = S_ISREG(st.st_mode) ? (Py_ssize_t)st.st_size : PY_SSIZE_T_MAX;
			r = run(d, text_maps, ext_hook);
			if (r || !d->mismatch)
				break;
			lock_off(d);
			if (lseek(fd, at, SEEK_SET) < 0) {
				PyErr_SetFromErrno(PyExc_OSError);
				break;
			}
		}
	} else if (!d || !window) {
		PyErr_NoMemory();
	}
	PyMem_Free(window);
	PyMem_Free(d);
	return r;
}
