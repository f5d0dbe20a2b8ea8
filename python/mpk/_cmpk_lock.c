/* mpk._cmpk's decoder, in lockstep: the trees of an ensemble.
 *
 * A list under a key in lock_keys (mpk passes {b"estimators_",
 * b"_predictors"}) of at least LOCK_MIN items whose first item is a map or
 * a list is offered to lock_hook, which answers None or (pattern, hole[,
 * each], make): the first item with the parts that may differ from item to
 * item replaced by hole (for a decision tree, its parameters' values, its
 * node count and depth, its arrays' shapes and data; for a row of
 * HistGradientBoosting's predictors, each one's arrays' shapes and data).
 * Every later item is then decoded in lockstep with pattern: the same
 * containers with the same sizes, the same keys in the same order, scalars
 * identical (as mpk_same_bits compares them), and where pattern has hole,
 * whatever value is there, decoded as usual into a tuple of those values,
 * which goes to each(tuple) when the hook gave one (mpk builds the tree from
 * it there, while its arrays are in the cache, and they are freed before the
 * next tree is read). The list of the first item and what each made of the
 * others goes to make(list, offsets), offsets
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
 * Faster still, the pattern is first compiled against the first item's own
 * bytes (struct prog): the runs of bytes between its holes, checked to
 * decode to the pattern's fixed values. A later item is then its runs
 * compared with memcmp and its hole values decoded between them, as many
 * comparisons as there are holes rather than one a value (a tree: about 30
 * against 150). An item whose bytes differ in a run, though its values may
 * be the same (another encoding of them), is not in lockstep: the stricter
 * test only costs a decoding without lockstep.
 *
 * An item that is not in lockstep (a list of unlike estimators) sets
 * mismatch: the whole object is then decoded again without lockstep (from
 * the start of the buffer, or of the file: only a file that can seek goes
 * in lockstep), so the result is always one of the two decodings. */

#include "_cmpk_dec.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Is the next value a list stored under a name in lock_keys? */
int lock_is_list(struct dec *d, PyObject *key)
{
	if (!d->lock_keys || !PyBytes_CheckExact(key)) /* (a vocabulary's 100k str keys) */
		return 0;
	unsigned char t = dec_need(d, 1) ? d->p[0] : 0;
	if (!((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd))
		return 0;
	return PySet_Contains(d->lock_keys, key);
}

#define LOCK_MIN 4

static int lock_mismatch(struct dec *d)
{
	d->mismatch = 1;
	dec_fail(d, "not in lockstep");
	return -1;
}

/* The size of the container at d->p if it is a map (want_map) or a list,
 * consumed; -1 with an exception when it is not. */
static Py_ssize_t lock_header(struct dec *d, int want_map)
{
	if (!dec_need(d, 1)) {
		dec_incomplete(d);
		return -1;
	}
	unsigned char t = d->p[0];
	int fix = want_map ? (t & 0xf0) == 0x80 : (t & 0xf0) == 0x90;
	int w16 = want_map ? t == 0xde : t == 0xdc, w32 = want_map ? t == 0xdf : t == 0xdd;
	if (!fix && !w16 && !w32)
		return lock_mismatch(d);
	d->p++;
	Py_ssize_t n = fix ? t & 0x0f : dec_length(d, w16 ? 2 : 4);
	/* refused where take_list and take_map refuse it */
	if (n > (want_map ? left(d) / 2 : left(d))) {
		dec_incomplete(d);
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
	if (!dec_need(d, 1))
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
	else if ((t == 0xd9 || t == 0xc4) && n <= 0xff && dec_need(d, 2) && d->p[1] == n)
		head = 2;
	else
		return PyErr_Occurred() ? -1 : 0;
	if (!dec_need(d, (size_t)(head + n)))
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
	int text = dec_is_text_map(d, k), lock = text ? 0 : lock_is_list(d, k);
	if (text < 0 || lock < 0)
		return -1;
	if (!text && !lock)
		return lock_match(d, pv, hole, caps);
	if (pv != hole)
		return lock_mismatch(d);
	PyObject *v = text ? dec_text_map(d) : lock_take_list(d);
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
		PyObject *v = dec_value(d);
		int r = v ? PyList_Append(caps, v) : -1;
		Py_XDECREF(v);
		return r;
	}
	int is_map = PyDict_CheckExact(pat);
	if (!is_map && !PyList_CheckExact(pat)) { /* a scalar: compared raw, or decoded */
		int same = lock_same_raw(d, pat);
		if (same)
			return same < 0 ? -1 : 0;
		PyObject *v = dec_value(d);
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
		dec_fail(d, "nested too deeply");
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
				k = dec_value(d);
				d->in_key--;
				same = k ? mpk_same_bits(k, pk, 0) : -1;
			}
			/* the key as decoded: pk itself when identical */
			r = same < 0 ? -1
			    : same   ? lock_value(d, k ? k : pk, pv, hole, caps)
				     : lock_mismatch(d);
			Py_XDECREF(k);
		}
	} else {
		for (Py_ssize_t i = 0; !r && i < n; i++)
			r = lock_match(d, PyList_GET_ITEM(pat, i), hole, caps);
	}
	d->depth--;
	return r;
}

/* A pattern compiled against its first item's bytes: runs of fixed bytes,
 * each but the last followed by a hole. */
struct run {
	Py_ssize_t at, len; /* the run: first[at, at + len) */
	int depth;	    /* the hole after it, nested this deep in the item */
};
struct prog {
	unsigned char *first; /* the first item's bytes */
	struct run *runs;
	Py_ssize_t n, room;
};

static void prog_free(struct prog *g)
{
	PyMem_Free(g->first);
	PyMem_Free(g->runs);
	memset(g, 0, sizeof *g);
}

/* Ends the current run at offset at, a hole at depth after it (the caller
 * sets where the next begins): 0, or -1 with an exception. */
static int prog_cut(struct prog *g, Py_ssize_t at, int depth)
{
	if (g->n + 1 >= g->room) {
		Py_ssize_t room = 2 * g->room;
		struct run *more = PyMem_Realloc(g->runs, sizeof *more * (size_t)room);
		if (!more) {
			PyErr_NoMemory();
			return -1;
		}
		g->runs = more, g->room = room;
	}
	struct run *r = &g->runs[g->n++];
	r->len = at - r->at, r->depth = depth;
	return 0;
}

/* The value at t, decoded and dropped: identical to pat unless pat is
 * NULL. 1, 0 when it is not, -1 with an exception. */
static int prog_skip(struct dec *t, PyObject *pat)
{
	PyObject *v = dec_value(t);
	int same = v ? (pat ? mpk_same_bits(v, pat, 0) : 1) : -1;
	Py_XDECREF(v);
	return same;
}

/* The runs of pat in the first item's bytes at t (decoded there, its hole
 * values skipped); keys and fixed values checked identical to pat's, so
 * that bytes equal to a run decode to what the pattern says. 1; 0 when
 * the bytes are not pat's, or pat has a key of text_maps or lock_keys
 * outside a hole (those decode otherwise: lock_value); -1 with an
 * exception. */
static int prog_walk(struct dec *t, const struct dec *d, PyObject *pat, PyObject *hole,
		     struct prog *g, int depth)
{
	if (pat == hole) {
		if (prog_cut(g, offset(t), depth) < 0)
			return -1;
		int r = prog_skip(t, NULL);
		g->runs[g->n].at = offset(t);
		return r;
	}
	int is_map = PyDict_CheckExact(pat);
	if (!is_map && !PyList_CheckExact(pat))
		return prog_skip(t, pat);
	Py_ssize_t n = lock_header(t, is_map);
	if (n < 0)
		return -1;
	if (n != (is_map ? PyDict_GET_SIZE(pat) : PyList_GET_SIZE(pat)))
		return 0;
	int r = 1;
	if (is_map) {
		Py_ssize_t pos = 0;
		PyObject *pk, *pv;
		while (r == 1 && PyDict_Next(pat, &pos, &pk, &pv)) {
			t->in_key++;
			r = prog_skip(t, pk);
			t->in_key--;
			if (r == 1 && PyBytes_CheckExact(pk) &&
			    ((d->text_maps && PySet_Contains(d->text_maps, pk)) ||
			     (d->lock_keys && PySet_Contains(d->lock_keys, pk))))
				r = 0;
			if (r == 1)
				r = prog_walk(t, d, pv, hole, g, depth + 1);
		}
	} else {
		for (Py_ssize_t i = 0; r == 1 && i < n; i++)
			r = prog_walk(t, d, PyList_GET_ITEM(pat, i), hole, g, depth + 1);
	}
	return r;
}

/* The first item's bytes, input[start, end): from those at hand, or read
 * again from the file; NULL when neither can be (no exception set). */
static unsigned char *first_bytes(const struct dec *d, Py_ssize_t start, Py_ssize_t end)
{
	Py_ssize_t len = end - start, got = 0;
	unsigned char *b = PyMem_Malloc(len ? (size_t)len : 1);
	if (!b)
		return NULL;
	if (start >= d->base) {
		memcpy(b, d->start + (start - d->base), (size_t)len);
		return b;
	}
	while (d->fd >= 0 && got < len) {
		ssize_t r = pread(d->fd, b + got, (size_t)(len - got), (off_t)(start + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += r;
	}
	if (got == len)
		return b;
	PyMem_Free(b);
	return NULL;
}

/* The largest first item compiled: beyond, the bytes it would copy and
 * decode again (its node arrays) cost more than comparing its hundred-odd
 * values one by one saves. */
#define PROG_MAX ((Py_ssize_t)1 << 20)

/* pat compiled against the first item, input[start, end): 1; 0 when it
 * cannot be (then items are matched value by value), with no exception;
 * -1 with one that is not an Exception (KeyboardInterrupt, in the ext
 * hook). */
static int prog_make(struct dec *d, PyObject *pat, PyObject *hole, Py_ssize_t start, Py_ssize_t end,
		     struct prog *g)
{
	if (end - start > PROG_MAX)
		return 0;
	struct dec *t = PyMem_Calloc(1, sizeof *t);
	int r = 0;
	if (!t || !(g->first = first_bytes(d, start, end)) ||
	    !(g->runs = PyMem_Malloc(sizeof *g->runs * 32)))
		goto out;
	g->room = 32;
	g->runs[0].at = 0;
	/* the first item's bytes alone, decoded as d decodes them but for lists
	 * in lockstep (the hook is for the input's own lists) */
	t->start = t->p = g->first;
	t->end = g->first + (end - start);
	t->size = end - start;
	t->fd = -1;
	t->text_maps = d->text_maps;
	t->ext_hook = d->ext_hook;
	if (!(t->vocabs = PyList_New(0)))
		goto out;
	r = prog_walk(t, d, pat, hole, g, 0);
	if (r == 1 && (t->p != t->end || prog_cut(g, t->size, -1) < 0))
		r = 0;
	for (Py_ssize_t i = 0; r == 1 && i < g->n; i++)
		if (d->fd >= 0 && g->runs[i].len > WINDOW)
			r = 0; /* (more than a file's window can hold at once) */
out:
	if (t) {
		Py_XDECREF(t->vocabs);
		for (int i = 0; i < CACHE_SLOTS; i++)
			Py_XDECREF(t->cache[i]);
		PyMem_Free(t);
	}
	if (r != 1) {
		prog_free(g);
		if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception))
			return -1;
		PyErr_Clear(); /* then value by value */
		return 0;
	}
	return 1;
}

/* A later item in lockstep by g's runs: as lock_match, bytes for values.
 * A run that differs, the input too short for a run, a hole value that
 * does not decode: not in lockstep, and the decoding without it names the
 * error where it is (a run holds container headers, which that decoding
 * checks against the input's length before their items). */
static int prog_match(struct dec *d, const struct prog *g, PyObject *caps)
{
	for (Py_ssize_t i = 0; i < g->n; i++) {
		const struct run *r = &g->runs[i];
		if (!dec_need(d, (size_t)r->len))
			return PyErr_Occurred() ? -1 : lock_mismatch(d);
		if (memcmp(d->p, g->first + r->at, (size_t)r->len))
			return lock_mismatch(d);
		d->p += r->len;
		if (r->depth < 0)
			break;
		d->depth += r->depth; /* the hole's nesting, as lock_match has it */
		PyObject *v = dec_value(d);
		d->depth -= r->depth;
		if (!v)
			return PyErr_ExceptionMatches(PyExc_ValueError) ||
					       PyErr_ExceptionMatches(PyExc_TypeError)
				       ? (PyErr_Clear(), lock_mismatch(d))
				       : -1;
		int bad = PyList_Append(caps, v) < 0;
		Py_DECREF(v);
		if (bad)
			return -1;
	}
	return 0;
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
	struct prog g = {0};
	if (!offsets || !o)
		goto out;
	PyList_SET_ITEM(offsets, 0, o);
	int bytes = prog_make(d, pat, hole, start, offset(d), &g);
	if (bytes < 0)
		goto out;
	for (Py_ssize_t i = 1; i < n; i++) {
		if (!(o = PyLong_FromSsize_t(offset(d))))
			goto out;
		PyList_SET_ITEM(offsets, i, o);
		PyObject *caps = PyList_New(0), *t = NULL;
		if (caps && (bytes ? prog_match(d, &g, caps) : lock_match(d, pat, hole, caps)) == 0)
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
	prog_free(&g);
	Py_XDECREF(offsets); /* a list part filled: PyList_New's NULLs are fine */
	return r;
}

/* The list is_lock_list found next: in lockstep when lock_hook says so. */
PyObject *lock_take_list(struct dec *d)
{
	unsigned char t = *d->p++;
	Py_ssize_t n = (t & 0xf0) == 0x90 ? t & 0x0f : dec_length(d, t == 0xdc ? 2 : 4);
	if (n < 0)
		return NULL;
	if (n < LOCK_MIN || n > PRESIZE_MAX || n > left(d))
		return dec_container(d, n, LIST);
	if (++d->depth > MAX_DEPTH) {
		d->depth--;
		return dec_fail(d, "nested too deeply");
	}
	Py_ssize_t start = offset(d);
	PyObject *list = PyList_New(n), *first = list ? dec_value(d) : NULL, *spec = NULL,
		 *r = NULL;
	if (!first)
		goto out;
	PyList_SET_ITEM(list, 0, first);
	spec = PyDict_CheckExact(first) || PyList_CheckExact(first)
		       ? PyObject_CallOneArg(d->lock_hook, first)
		       : Py_NewRef(Py_None);
	if (!spec)
		goto out;
	if (spec != Py_None) {
		r = lock_items(d, list, n, spec, start);
		goto out;
	}
	for (Py_ssize_t i = 1; i < n; i++) {
		PyObject *v = dec_value(d);
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

/* The lockstep argument: None, or (keys, hook) with keys a frozenset.
 * 0, or -1 with an exception. */
int lock_args(struct dec *d, PyObject *lockstep)
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
void lock_off(struct dec *d)
{
	PyErr_Clear();
	d->lock_keys = d->lock_hook = NULL;
	d->mismatch = d->depth = d->in_key = 0;
}
