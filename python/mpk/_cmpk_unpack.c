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

#include "_cmpk_dec.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

PyObject *dec_fail(const struct dec *d, const char *what)
{
	PyErr_Format(PyExc_ValueError, "%s at byte %zd", what, offset(d));
	return NULL;
}

PyObject *dec_incomplete(const struct dec *d)
{
	return PyErr_Occurred()
		       ? NULL
		       : dec_fail(d, "incomplete input"); /* (a failed read is an OSError) */
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
int dec_need(struct dec *d, size_t n)
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
Py_ssize_t dec_length(struct dec *d, int width)
{
	if (!dec_need(d, (size_t)width)) {
		dec_incomplete(d);
		return -1;
	}
	uint64_t n = be(d->p, width);
	d->p += width;
	if (n > (uint64_t)left(d)) {
		dec_incomplete(d);
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
		return dec_incomplete(d);
	}
	d->base = at + n;
	return b;
}

/* A payload of n bytes (at most left(d)) as bytes: equal short str
 * payloads as one; a long bin payload, not a key, as a bytearray. */
static PyObject *take_bytes(struct dec *d, Py_ssize_t n, int payload)
{
	int bytearray = payload == BIN && n >= BIG_BIN && !d->in_key;
	if (!dec_need(d, (size_t)n))
		return d->fd >= 0 && n > WINDOW ? take_long(d, n, bytearray) : dec_incomplete(d);
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
	if (n + 1 > left(d) || !dec_need(d, 1))
		return dec_incomplete(d);
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
		return dec_incomplete(d);
	if (n > PRESIZE_MAX) { /* grown as it is filled: see PRESIZE_MAX */
		PyObject *list = PyList_New(0);
		for (Py_ssize_t i = 0; list && i < n; i++) {
			PyObject *v = dec_value(d);
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
		PyObject *v = dec_value(d);
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

/* The str of n ASCII bytes at p (no decoding to do). */
static PyObject *ascii_str(const unsigned char *p, Py_ssize_t n)
{
	PyObject *s = PyUnicode_New(n, 127);
	if (s)
		memcpy(PyUnicode_DATA(s), p, (size_t)n);
	return s;
}

/* A key of a text map: str or bin as str when valid UTF-8, else as usual. */
static PyObject *take_text_key(struct dec *d)
{
	if (!dec_need(d, 1))
		return dec_incomplete(d);
	unsigned char t = d->p[0];
	Py_ssize_t n;
	if ((t & 0xe0) == 0xa0) {
		d->p++;
		n = t & 0x1f;
	} else if (t == 0xd9 || t == 0xc4 || t == 0xda || t == 0xc5 || t == 0xdb || t == 0xc6) {
		d->p++;
		n = dec_length(d, t == 0xd9 || t == 0xc4 ? 1 : t == 0xda || t == 0xc5 ? 2 : 4);
		if (n < 0)
			return NULL;
	} else {
		return dec_value(d);
	}
	PyObject *raw = NULL, *s;
	if (!dec_need(d, (size_t)n) &&
	    !(raw = take_bytes(d, n, RAW))) /* (longer than a file's window) */
		return NULL;
	/* dec_need() may have moved the window: d->p is read only now */
	const unsigned char *p = raw ? (const unsigned char *)PyBytes_AS_STRING(raw) : d->p;
	if (is_ascii(p, n)) /* most terms */
		s = ascii_str(p, n);
	else
		s = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
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
int dec_is_text_map(struct dec *d, PyObject *key)
{
	unsigned char t = dec_need(d, 1) ? d->p[0] : 0;
	if (!d->text_maps || !PyBytes_CheckExact(key) ||
	    !((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf))
		return 0;
	return PySet_Contains(d->text_maps, key);
}

/* The map is_text_map found next, its keys as text (take_container). */
PyObject *dec_text_map(struct dec *d)
{
	unsigned char t = *d->p++;
	Py_ssize_t n = (t & 0xf0) == 0x80 ? t & 0x0f : dec_length(d, t == 0xde ? 2 : 4);
	return n < 0 ? NULL : dec_container(d, n, TEXT_MAP);
}

/* Is i an index of a vocabulary of n entries not seen before (seen: n
 * bits)? Then seen. */
static int vocab_index(uint64_t i, Py_ssize_t n, unsigned char *seen)
{
	if (i >= (uint64_t)n || seen[i / 8] & 1 << i % 8)
		return 0;
	seen[i / 8] |= (unsigned char)(1 << i % 8);
	return 1;
}

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
	return i >= 0 && vocab_index((uint64_t)i, n, seen);
}

/* The next entry of a text map when it is a vocabulary's, at hand: a key
 * of at most 255 ASCII bytes (str or bin) and a non-negative int of at
 * most 32 bits. It goes into map as take_text_key and dec_value decode it
 * (vocab kept as vocab_entry keeps it), without their calls and checks for
 * any other value: a 100k-term vocabulary decoded in 11.2 ms, not 13.0.
 * 1; 0 when the entry is not that (nothing consumed: decoded as any
 * other); -1 with an exception. */
static int vocab_entry_at_hand(struct dec *d, PyObject *map, Py_ssize_t n, unsigned char *seen,
			       int *vocab)
{
	const unsigned char *p = d->p;
	Py_ssize_t avail = d->end - p, kn, kh;
	if (avail < 2)
		return 0;
	if ((p[0] & 0xe0) == 0xa0)
		kn = p[0] & 0x1f, kh = 1;
	else if (p[0] == 0xd9 || p[0] == 0xc4)
		kn = p[1], kh = 2;
	else
		return 0;
	if (avail < kh + kn + 1)
		return 0;
	const unsigned char *kp = p + kh, *vp = kp + kn;
	int vw = vp[0] <= 0x7f ? 0 : vp[0] == 0xcc ? 1 : vp[0] == 0xcd ? 2 : vp[0] == 0xce ? 4 : -1;
	if (vw < 0 || avail < kh + kn + 1 + vw || !is_ascii(kp, kn))
		return 0;
	uint64_t i = vw ? be(vp + 1, vw) : vp[0];
	if (i > LONG_MAX)
		return 0; /* (a 32-bit long) */
	PyObject *k = ascii_str(kp, kn), *v = k ? PyLong_FromLong((long)i) : NULL;
	int r = v ? PyDict_SetItem(map, k, v) : -1;
	Py_XDECREF(k);
	Py_XDECREF(v);
	if (r < 0)
		return -1;
	d->p = vp + 1 + vw;
	*vocab = *vocab && vocab_index(i, n, seen);
	return 1;
}

static PyObject *take_map(struct dec *d, Py_ssize_t n, int text_keys)
{
	if (n > left(d) / 2) /* a key and a value: two bytes at least */
		return dec_incomplete(d);
	PyObject *map = n <= PRESIZE_MAP_MAX ? _PyDict_NewPresized(n) : PyDict_New();
	unsigned char *seen = text_keys ? PyMem_Calloc((size_t)n / 8 + 1, 1) : NULL;
	int vocab = seen != NULL;
	if (!map || (text_keys && !seen))
		goto fail;
	for (Py_ssize_t i = 0; i < n; i++) {
		int r = text_keys ? vocab_entry_at_hand(d, map, n, seen, &vocab) : 0;
		if (r < 0)
			goto fail;
		if (r)
			continue;
		d->in_key++;
		PyObject *k = text_keys ? take_text_key(d) : dec_value(d);
		d->in_key--;
		if (!k)
			goto fail;
		int text = dec_is_text_map(d, k), lock = text ? 0 : lock_is_list(d, k);
		PyObject *v = text > 0		       ? dec_text_map(d)
			      : lock > 0	       ? lock_take_list(d)
			      : text == 0 && lock == 0 ? dec_value(d)
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

PyObject *dec_container(struct dec *d, Py_ssize_t n, int kind)
{
	if (++d->depth > MAX_DEPTH) {
		d->depth--;
		return dec_fail(d, "nested too deeply");
	}
	PyObject *r = kind == LIST ? take_list(d, n) : take_map(d, n, kind == TEXT_MAP);
	d->depth--;
	return r;
}

static PyObject *take_int(struct dec *d, int width, int is_signed)
{
	if (!dec_need(d, (size_t)width))
		return dec_incomplete(d);
	uint64_t v = be(d->p, width);
	d->p += width;
	if (!is_signed)
		return PyLong_FromUnsignedLongLong(v);
	int shift = 64 - 8 * width; /* sign-extend */
	return PyLong_FromLongLong((long long)(v << shift) >> shift);
}

static PyObject *take_float(struct dec *d, int width)
{
	if (!dec_need(d, (size_t)width))
		return dec_incomplete(d);
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

PyObject *dec_value(struct dec *d)
{
	if (!dec_need(d, 1))
		return dec_incomplete(d);
	unsigned char t = *d->p++;
	Py_ssize_t n;
	if (t <= 0x7f)
		return PyLong_FromLong(t);
	if (t >= 0xe0)
		return PyLong_FromLong((signed char)t);
	if (t <= 0x8f)
		return dec_container(d, t & 0x0f, MAP);
	if (t <= 0x9f)
		return dec_container(d, t & 0x0f, LIST);
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
		n = dec_length(d, 1 << (t - 0xc4));
		return n < 0 ? NULL : take_bytes(d, n, BIN);
	case 0xc7:
	case 0xc8:
	case 0xc9: /* ext 8/16/32 */
		n = dec_length(d, 1 << (t - 0xc7));
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
		n = dec_length(d, 1 << (t - 0xd9));
		return n < 0 ? NULL : take_bytes(d, n, STR);
	case 0xdc:
	case 0xdd: /* array 16/32 */
		n = dec_length(d, t == 0xdc ? 2 : 4);
		return n < 0 ? NULL : dec_container(d, n, LIST);
	case 0xde:
	case 0xdf: /* map 16/32 */
		n = dec_length(d, t == 0xde ? 2 : 4);
		return n < 0 ? NULL : dec_container(d, n, MAP);
	default: /* 0xc1: never used */
		d->p--;
		return dec_fail(d, "invalid MsgPack type byte 0xc1");
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
	PyObject *obj = d->vocabs ? dec_value(d) : NULL, *r = NULL;
	int more = obj && dec_need(d, 1); /* a byte after the object (a file reads one) */
	if (obj && !PyErr_Occurred())
		r = Py_BuildValue("(NnOO)", obj, offset(d), d->vocabs, more ? Py_True : Py_False);
	else
		Py_XDECREF(obj);
	Py_XDECREF(d->vocabs);
	for (int i = 0; i < CACHE_SLOTS; i++)
		Py_CLEAR(d->cache[i]);
	return r;
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
