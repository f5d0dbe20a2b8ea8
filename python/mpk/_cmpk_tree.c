/* mpk._cmpk's node tables of decision trees (python/mpk/_forest.py,
 * batched forest loads), in two steps, as pickle builds a forest: every
 * tree checked first, then each tree's table laid out in one reused buffer
 * that Tree.__setstate__ copies at once, while it is still in the cache.
 *
 * tree_columns(caps, at, ns, dtypes, tail, n_features)
 *
 *   caps        k tuples, one a tree, holding the shape and the data of
 *               each node-table array: the values the decoder captured
 *               where a tree differs from its ensemble's first (see
 *               _cmpk_unpack.c's lockstep), or the same picked out of
 *               decoded maps
 *   at          16 ints: where in each tuple the arrays' shapes and data
 *               are, (shape, data) for children_left, children_right,
 *               feature, threshold, impurity, n_node_samples,
 *               weighted_n_node_samples (NODE_DTYPE's fields, in this
 *               order), then value
 *   ns          the k node counts
 *   dtypes      the 8 arrays' dtypes (the caller has checked each array
 *               to be a compact map of its dtype): b"<i4" or b"<i8" for the
 *               integer columns (0, 1, 2, 5), b"<f8" for the rest
 *   tail        value's shape after the node count: (n_outputs, max_classes)
 *
 * returns the 8 columns, each a list of the k trees' data, or None when
 * any shape is not exactly the list [n] ([n, *tail] for value) of ints, n
 * its tree's node count, or its data not bytes (or a bytearray, as the
 * decoder gives a long bin) of exactly that many items, or any tree's
 * links are not a tree's (the rules of mpk's check_tree_links,
 * _helpers.py), or a size of the tail passes 2^20 (TAIL_MAX, so that no
 * row size overflows); the caller's generic way then checks the trees and
 * names the problem. Node j is a leaf when its left child is -1, and its right child
 * is then -1 too; an inner node's children lie in (j, n) and its feature in
 * [0, n_features); every node but the root is the child of exactly one
 * node, which with children after their parent leaves no cycle and nothing
 * unreachable.
 *
 * tree_fill(buf, columns, i, offsets, itemsize)
 *
 *   writes tree i's table (from tree_columns' columns) into the bytearray
 *   buf, node after node, each itemsize bytes with its 7 fields at offsets
 *   (scikit-learn's NODE_DTYPE, whose fields are all 8 bytes wide), the
 *   integers widened to int64; bytes no field covers are zero. Returns the
 *   node count. */

#include "_cmpk.h"

#include <stdint.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tree_fill copies little-endian columns as they are"
#endif

enum {
	LEFT,
	RIGHT,
	FEATURE,
	N_NODE_SAMPLES = 5,
	NFIELDS = TREE_FIELDS,
	VALUE = 7,
	NCOLS = TREE_COLS
};
#define TAIL_MAX TREE_TAIL_MAX

static int is_int_col(int c)
{
	return c <= FEATURE || c == N_NODE_SAMPLES;
}

/* A column's item width from its dtype: 4 or 8, or 0 when the dtype is
 * not one this column may have. */
static int width_of(PyObject *dtype, int c)
{
	if (!PyBytes_CheckExact(dtype))
		return 0;
	const char *s = PyBytes_AS_STRING(dtype);
	if (is_int_col(c))
		return !strcmp(s, "<i8") ? 8 : !strcmp(s, "<i4") ? 4 : 0;
	return !strcmp(s, "<f8") ? 8 : 0;
}

/* The bytes of o, a bytes or bytearray object, and their count; NULL for
 * anything else. */
static const unsigned char *bytes_of(PyObject *o, Py_ssize_t *len)
{
	if (PyBytes_CheckExact(o)) {
		*len = PyBytes_GET_SIZE(o);
		return (const unsigned char *)PyBytes_AS_STRING(o);
	}
	if (PyByteArray_CheckExact(o)) {
		*len = PyByteArray_GET_SIZE(o);
		return (const unsigned char *)PyByteArray_AS_STRING(o);
	}
	return NULL;
}

static inline int64_t get_int(const unsigned char *p, Py_ssize_t j, int width)
{
	if (width == 4) {
		int32_t v;
		memcpy(&v, p + 4 * j, 4);
		return v;
	}
	int64_t v;
	memcpy(&v, p + 8 * j, 8);
	return v;
}

/* The first size of shape if it is exactly the list [n, *tail] of ints
 * (no bool), n >= 0 and, unless want < 0, n == want; else -1. */
static Py_ssize_t shape_rows(PyObject *shape, Py_ssize_t want, const Py_ssize_t *tail,
			     Py_ssize_t ntail)
{
	if (!PyList_CheckExact(shape) || PyList_GET_SIZE(shape) != 1 + ntail)
		return -1;
	Py_ssize_t n = -1;
	for (Py_ssize_t d = 0; d <= ntail; d++) {
		PyObject *v = PyList_GET_ITEM(shape, d);
		if (!PyLong_CheckExact(v))
			return -1;
		int overflow;
		long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
		if (overflow || x < 0 || x > ((Py_ssize_t)1 << 40) ||
		    (d ? x != tail[d - 1] : want >= 0 && x != want))
			return -1;
		if (!d)
			n = (Py_ssize_t)x;
	}
	return n;
}

/* The data of map m if it is exactly a compact array {nd: True, kind: b"",
 * type: dtype, shape: [n, *tail], data: n rows of per_row bytes}, with n
 * want unless want < 0, else NULL (a borrowed reference; no exception
 * set); *rows (if given) gets n. */
static PyObject *column_data(PyObject *m, PyObject *const *fields, PyObject *dtype, Py_ssize_t want,
			     Py_ssize_t per_row, const Py_ssize_t *tail, Py_ssize_t ntail,
			     Py_ssize_t *rows)
{
	enum { ND, KIND, TYPE, SHAPE, DATA };
	PyObject *v[5];
	Py_ssize_t len, n;
	if (!PyDict_CheckExact(m) || PyDict_GET_SIZE(m) != 5)
		return NULL;
	for (int f = 0; f < 5; f++)
		if (!(v[f] = PyDict_GetItem(m, fields[f])))
			return NULL;
	if (v[ND] != Py_True || !PyBytes_CheckExact(v[KIND]) || PyBytes_GET_SIZE(v[KIND]) ||
	    !PyBytes_CheckExact(v[TYPE]) || PyBytes_GET_SIZE(v[TYPE]) != PyBytes_GET_SIZE(dtype) ||
	    memcmp(PyBytes_AS_STRING(v[TYPE]), PyBytes_AS_STRING(dtype),
		   (size_t)PyBytes_GET_SIZE(dtype)) ||
	    !bytes_of(v[DATA], &len) || (n = shape_rows(v[SHAPE], want, tail, ntail)) < 0 ||
	    len / per_row != n || len % per_row)
		return NULL;
	if (rows)
		*rows = n;
	return v[DATA];
}

/* The five keys of a compact map, as bytes: 0, or -1 with an exception. */
static int compact_keys(PyObject **fields)
{
	static const char *names[5] = {"nd", "kind", "type", "shape", "data"};
	for (int f = 0; f < 5; f++)
		if (!(fields[f] = PyBytes_FromString(names[f])))
			return -1;
	return 0;
}

/* Inner node j of a tree of n nodes, children l and r: are they after it,
 * inside the table and no node's child yet (marks, n bytes)? Then marked. */
static inline int child_pair(int64_t l, int64_t r, Py_ssize_t j, Py_ssize_t n, unsigned char *marks)
{
	if (l <= j || l >= n || r <= j || r >= n || marks[l] || marks[r] || l == r)
		return 0;
	marks[l] = marks[r] = 1;
	return 1;
}

/* Tree links of n nodes, from its left, right and feature columns of the
 * given widths; marks has n bytes. Inlined for each common set of widths,
 * so that the loop reads each column at a width known when compiled. */
static inline __attribute__((always_inline)) int
links_at(const unsigned char *lc, const unsigned char *rc, const unsigned char *fc, Py_ssize_t n,
	 int64_t n_features, unsigned char *marks, int wl, int wr, int wf)
{
	Py_ssize_t inner = 0;
	memset(marks, 0, (size_t)n);
	for (Py_ssize_t j = 0; j < n; j++) {
		int64_t l = get_int(lc, j, wl), r = get_int(rc, j, wr);
		if (l == -1 && r == -1)
			continue;
		int64_t f = get_int(fc, j, wf);
		if (f < 0 || f >= n_features || !child_pair(l, r, j, n, marks))
			return 0;
		inner++;
	}
	return 2 * inner == n - 1;
}

typedef uint32_t u32x4 __attribute__((vector_size(16)));

/* links_at for int32 columns of fewer than 2^31 nodes, without a branch on
 * the data: links_at's branch on leaf or inner node, which alternate past a
 * branch predictor's guess, was 3.3 us of an 800-node tree; this is 1.6.
 * First every node, four at a time: a leaf (both children -1) or an inner
 * node whose children are after it and inside the table, and whose feature
 * is in range; n - 1 children in all. Then each inner node's children are
 * marked (a leaf's -1 in marks[n], a sink), and every node but the root
 * must be: n - 1 children in (0, n) that mark all n - 1 of them are each
 * one node's, once (so two the same, or a node two nodes' child, leave
 * one unmarked). */
static int links_i32(const unsigned char *lc, const unsigned char *rc, const unsigned char *fc,
		     Py_ssize_t n, int64_t n_features, unsigned char *marks)
{
	uint32_t un = (uint32_t)n, nf = n_features <= 0		  ? 0
					: n_features >= INT32_MAX ? (uint32_t)1 << 31
								  : (uint32_t)n_features;
	u32x4 j4 = {0, 1, 2, 3}, four = {4, 4, 4, 4}, one = {1, 1, 1, 1}, none = ~(u32x4){0};
	u32x4 last = one * (un - 1), nf4 = one * nf, bad4 = {0}, inner4 = {0};
	Py_ssize_t j = 0;
	for (; j + 4 <= n; j += 4, j4 += four) {
		u32x4 l, r, f;
		memcpy(&l, lc + 4 * j, 16);
		memcpy(&r, rc + 4 * j, 16);
		memcpy(&f, fc + 4 * j, 16);
		u32x4 after = last - j4; /* l in (j, n): l - j - 1 in [0, after) */
		u32x4 leaf = (u32x4)((l == none) & (r == none));
		u32x4 in = (u32x4)((l - j4 - one < after) & (r - j4 - one < after) & (f < nf4));
		bad4 |= ~(leaf | in);
		inner4 -= in; /* (a lane that holds is ~0) */
	}
	uint32_t bad = bad4[0] | bad4[1] | bad4[2] | bad4[3];
	Py_ssize_t inner = (Py_ssize_t)inner4[0] + inner4[1] + inner4[2] + inner4[3];
	for (; j < n; j++) {
		uint32_t l, r, f, uj = (uint32_t)j, after = un - uj - 1;
		memcpy(&l, lc + 4 * j, 4);
		memcpy(&r, rc + 4 * j, 4);
		memcpy(&f, fc + 4 * j, 4);
		uint32_t in = (l - uj - 1 < after) & (r - uj - 1 < after) & (f < nf);
		bad |= !(((l == ~0u) & (r == ~0u)) | in);
		inner += in;
	}
	if (bad || 2 * inner != n - 1)
		return 0;
	memset(marks, 0, (size_t)n + 1);
	for (j = 0; j < n; j++) {
		int32_t l, r;
		memcpy(&l, lc + 4 * j, 4);
		memcpy(&r, rc + 4 * j, 4);
		marks[l < 0 ? n : l] = 1;
		marks[r < 0 ? n : r] = 1;
	}
	unsigned char all = 1;
	for (j = 1; j < n; j++)
		all &= marks[j];
	return all;
}

int mpk_tree_links(PyObject *const *col, const int *width, Py_ssize_t n, int64_t n_features,
		   unsigned char *marks)
{
	Py_ssize_t len;
	const unsigned char *lc = bytes_of(col[LEFT], &len), *rc = bytes_of(col[RIGHT], &len),
			    *fc = bytes_of(col[FEATURE], &len);
	int wl = width[LEFT], wr = width[RIGHT], wf = width[FEATURE];
	if (wl == 4 && wr == 4 && wf == 4 && n < ((Py_ssize_t)1 << 31))
		return links_i32(lc, rc, fc, n, n_features, marks);
	if (wl == 4 && wr == 4 && wf == 4)
		return links_at(lc, rc, fc, n, n_features, marks, 4, 4, 4);
	if (wl == 8 && wr == 8 && wf == 8)
		return links_at(lc, rc, fc, n, n_features, marks, 8, 8, 8);
	return links_at(lc, rc, fc, n, n_features, marks, wl, wr, wf);
}

/* The node counts of ns, each in [1, 2^40] (the caller's bound too): 0;
 * or -1 when one is not, with no exception set unless ns held a non-int. */
static int counts(PyObject *ns, Py_ssize_t *n_out)
{
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ns); i++) {
		Py_ssize_t n = PyLong_AsSsize_t(PyList_GET_ITEM(ns, i));
		if (n == -1 && PyErr_Occurred())
			return -1;
		if (n < 1 || n > ((Py_ssize_t)1 << 40))
			return -1;
		n_out[i] = n;
	}
	return 0;
}

/* The data of an array of shape and data if the shape is exactly [want,
 * *tail] and the data want rows of per_row bytes; else NULL (a borrowed
 * reference; no exception set). */
static PyObject *rows_data(PyObject *shape, PyObject *data, Py_ssize_t want, Py_ssize_t per_row,
			   const Py_ssize_t *tail, Py_ssize_t ntail)
{
	Py_ssize_t len;
	if (!bytes_of(data, &len) || shape_rows(shape, want, tail, ntail) != want ||
	    len / per_row != want || len % per_row)
		return NULL;
	return data;
}

/* The item widths of the 8 arrays of dtypes (a tuple of 8 bytes) and
 * their row sizes, value's with tail (n_outputs, max n_classes, each at
 * most TAIL_MAX): 0, or -1 with an exception for a malformed dtype. */
int mpk_tree_widths(PyObject *dtypes, const Py_ssize_t *tail, int *width, Py_ssize_t *per)
{
	for (int c = 0; c < NCOLS; c++) {
		if (!(width[c] = width_of(PyTuple_GET_ITEM(dtypes, c), c))) {
			PyErr_SetString(PyExc_ValueError, "tree_columns: a dtype is malformed");
			return -1;
		}
		per[c] = width[c] * (c == VALUE ? tail[0] * tail[1] : 1);
	}
	return 0;
}

/* The data of the 8 arrays of a tree's hole values t (a tuple; at: the 16
 * places of their shapes and data) into data (borrowed) when each is
 * exactly n rows of per[c] bytes, shape [n] ([n, *tail] for value): 1;
 * else 0 (no exception set). */
int mpk_tree_data(PyObject *t, const Py_ssize_t *at, Py_ssize_t n, const Py_ssize_t *per,
		  const Py_ssize_t *tail, PyObject **data)
{
	if (!PyTuple_CheckExact(t))
		return 0;
	for (int c = 0; c < NCOLS; c++) {
		if (at[2 * c] >= PyTuple_GET_SIZE(t) || at[2 * c + 1] >= PyTuple_GET_SIZE(t))
			return 0;
		data[c] = rows_data(PyTuple_GET_ITEM(t, at[2 * c]),
				    PyTuple_GET_ITEM(t, at[2 * c + 1]), n, per[c], tail,
				    c == VALUE ? 2 : 0);
		if (!data[c])
			return 0;
	}
	return 1;
}

/* The checks of tree_columns, filling cols (8 lists of k). 1: all good;
 * 0: a tree is not; -1: an exception. */
static int columns(PyObject *caps, const Py_ssize_t *at, const Py_ssize_t *ns, PyObject *dtypes,
		   const Py_ssize_t *tail, int64_t n_features, PyObject **cols)
{
	int width[NCOLS], ok = -1;
	Py_ssize_t per[NCOLS], k = PyList_GET_SIZE(caps), room = 0;
	/* a byte per node of the largest tree so far whose columns hold its
	 * node count: grown only then, so that a node count is never more
	 * than a number in the file (2^40 claimed in a few bytes: refused, not
	 * a MemoryError) */
	unsigned char *marks = NULL;
	if (mpk_tree_widths(dtypes, tail, width, per) < 0)
		return -1;
	ok = 0;
	for (Py_ssize_t i = 0; i < k; i++) {
		PyObject *data[NCOLS];
		if (!mpk_tree_data(PyList_GET_ITEM(caps, i), at, ns[i], per, tail, data))
			goto out;
		if (ns[i] > room) {
			unsigned char *more = PyMem_Realloc(marks, (size_t)ns[i] + 1);
			if (!more) {
				PyErr_NoMemory();
				ok = -1;
				goto out;
			}
			marks = more;
			room = ns[i];
		}
		if (!mpk_tree_links(data, width, ns[i], n_features, marks))
			goto out;
		for (int c = 0; c < NCOLS; c++) {
			Py_INCREF(data[c]);
			PyList_SET_ITEM(cols[c], i, data[c]);
		}
	}
	ok = 1;
out:
	PyMem_Free(marks);
	return ok;
}

PyObject *mpk_tree_columns(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *caps, *at_o, *ns_o, *dtypes, *out = NULL, *cols[NCOLS] = {NULL};
	Py_ssize_t tail[2], at[2 * NCOLS], *ns = NULL;
	long long n_features;
	if (!PyArg_ParseTuple(args, "O!O!O!O!(nn)L:tree_columns", &PyList_Type, &caps,
			      &PyTuple_Type, &at_o, &PyList_Type, &ns_o, &PyTuple_Type, &dtypes,
			      &tail[0], &tail[1], &n_features))
		return NULL;
	Py_ssize_t k = PyList_GET_SIZE(caps);
	if (PyList_GET_SIZE(ns_o) != k || PyTuple_GET_SIZE(at_o) != 2 * NCOLS ||
	    PyTuple_GET_SIZE(dtypes) != NCOLS || tail[0] < 1 || tail[1] < 1)
		goto bad;
	/* n_outputs and n_classes come from the file: beyond TAIL_MAX (where a
	 * row's size could overflow) a tree is not for this fast path, and the
	 * caller's generic way checks it and names the problem */
	if (tail[0] > TAIL_MAX || tail[1] > TAIL_MAX)
		Py_RETURN_NONE;
	for (int j = 0; j < 2 * NCOLS; j++) {
		at[j] = PyLong_AsSsize_t(PyTuple_GET_ITEM(at_o, j));
		if (at[j] == -1 && PyErr_Occurred())
			return NULL;
		if (at[j] < 0)
			goto bad;
	}
	if (!(ns = PyMem_Malloc(sizeof *ns * (size_t)(k ? k : 1))))
		return PyErr_NoMemory();
	if (counts(ns_o, ns) < 0) {
		PyMem_Free(ns);
		if (PyErr_Occurred())
			return NULL;
		Py_RETURN_NONE;
	}
	for (int c = 0; c < NCOLS; c++)
		if (!(cols[c] = PyList_New(k)))
			goto out;
	int r = columns(caps, at, ns, dtypes, tail, n_features, cols);
	if (r < 0)
		goto out;
	if (r == 0) {
		out = Py_None;
		Py_INCREF(out);
		goto out;
	}
	if (!(out = PyTuple_New(NCOLS)))
		goto out;
	for (int c = 0; c < NCOLS; c++) {
		PyTuple_SET_ITEM(out, c, cols[c]);
		cols[c] = NULL;
	}
out:
	for (int c = 0; c < NCOLS; c++)
		Py_XDECREF(cols[c]); /* a list part filled: PyList_New's NULLs are fine */
	PyMem_Free(ns);
	return out;
bad:
	PyErr_SetString(
		PyExc_ValueError,
		"tree_columns: k trees, 16 non-negative places, k counts, 8 dtypes, a tail of 2");
	return NULL;
}

/* One field of n nodes: src's items, widened to 8 bytes. */
static void put_field(unsigned char *dst, Py_ssize_t itemsize, const unsigned char *src,
		      Py_ssize_t n, int width)
{
	if (width == 4) {
		for (Py_ssize_t j = 0; j < n; j++) {
			int32_t v;
			memcpy(&v, src + 4 * j, 4);
			int64_t w = v;
			memcpy(dst + j * itemsize, &w, 8);
		}
	} else {
		for (Py_ssize_t j = 0; j < n; j++)
			memcpy(dst + j * itemsize, src + 8 * j, 8);
	}
}

/* n nodes of the 7 fields' columns src (of the given widths) laid out in
 * table, each itemsize bytes with its fields at off, the integers widened
 * to int64; bytes no field covers are zero. */
void mpk_tree_lay(unsigned char *table, Py_ssize_t itemsize, const Py_ssize_t *off,
		  const unsigned char *const *src, const int *width, Py_ssize_t n)
{
	enum { BLOCK = 256 };	     /* nodes a pass: their records stay in the L1 cache */
	if (itemsize != 8 * NFIELDS) /* bytes no field covers */
		memset(table, 0, (size_t)(n * itemsize));
	for (Py_ssize_t j = 0; j < n; j += BLOCK) {
		Py_ssize_t k = n - j < BLOCK ? n - j : BLOCK;
		for (int c = 0; c < NFIELDS; c++)
			put_field(table + j * itemsize + off[c], itemsize, src[c] + j * width[c], k,
				  width[c]);
	}
}

PyObject *mpk_tree_fill(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *buf, *cols, *offsets;
	const unsigned char *src[NFIELDS];
	Py_ssize_t i, itemsize, off[NFIELDS], len[NFIELDS], n = -1;
	int width[NFIELDS];
	if (!PyArg_ParseTuple(args, "O!O!nO!n:tree_fill", &PyByteArray_Type, &buf, &PyTuple_Type,
			      &cols, &i, &PyTuple_Type, &offsets, &itemsize))
		return NULL;
	if (PyTuple_GET_SIZE(cols) != NCOLS || PyTuple_GET_SIZE(offsets) != NFIELDS ||
	    itemsize < 8 || itemsize > 4096)
		goto bad;
	for (int c = 0; c < NFIELDS; c++) {
		PyObject *col = PyTuple_GET_ITEM(cols, c);
		off[c] = PyLong_AsSsize_t(PyTuple_GET_ITEM(offsets, c));
		if (off[c] == -1 && PyErr_Occurred())
			return NULL;
		if (!PyList_CheckExact(col) || i < 0 || i >= PyList_GET_SIZE(col) || off[c] < 0 ||
		    off[c] > itemsize - 8)
			goto bad;
		if (!(src[c] = bytes_of(PyList_GET_ITEM(col, i), &len[c])))
			goto bad;
	}
	/* the widths, from the lengths: the float columns are 8 bytes an item */
	n = len[NFIELDS - 1] / 8;
	for (int c = 0; c < NFIELDS; c++) {
		width[c] = len[c] == 8 * n ? 8 : is_int_col(c) && len[c] == 4 * n ? 4 : 0;
		if (!width[c])
			goto bad;
	}
	if (n > PyByteArray_GET_SIZE(buf) / itemsize)
		goto bad;
	mpk_tree_lay((unsigned char *)PyByteArray_AS_STRING(buf), itemsize, off, src, width, n);
	return PyLong_FromSsize_t(n);
bad:
	PyErr_SetString(PyExc_ValueError, "tree_fill: a column, offset or buffer is malformed");
	return NULL;
}

/* compact_columns(items, keys, dtypes, widths, tails): the m arrays of each
 * of k maps (items, a list of dicts; keys, dtypes, widths and tails, m
 * each: the arrays' keys, dtype strings as bytes, item sizes and shapes
 * after the first size, a tuple of at most 2 ints) when every one is
 * exactly a compact map {nd: True, kind: b"", type: its dtype, shape: [n,
 * *tail], data: bytes or a bytearray of exactly that many items}, n >= 0:
 * (rows, datas), each m lists of k, the n and the data of every array;
 * else None. For HistGradientBoosting's predictors (_predictors.py). */
PyObject *mpk_compact_columns(PyObject *self, PyObject *args)
{
	(void)self;
	enum { MAX_COLS = 64 };
	PyObject *items, *keys, *dtypes, *widths, *tails, *fields[5] = {NULL}, *out = NULL;
	PyObject *rows = NULL, *datas = NULL;
	Py_ssize_t per[MAX_COLS], tail[MAX_COLS][2], ntail[MAX_COLS];
	if (!PyArg_ParseTuple(args, "O!O!O!O!O!:compact_columns", &PyList_Type, &items,
			      &PyTuple_Type, &keys, &PyTuple_Type, &dtypes, &PyTuple_Type, &widths,
			      &PyTuple_Type, &tails))
		return NULL;
	Py_ssize_t m = PyTuple_GET_SIZE(keys), k = PyList_GET_SIZE(items);
	if (m > MAX_COLS || PyTuple_GET_SIZE(dtypes) != m || PyTuple_GET_SIZE(widths) != m ||
	    PyTuple_GET_SIZE(tails) != m)
		goto bad;
	for (Py_ssize_t c = 0; c < m; c++) {
		PyObject *t = PyTuple_GET_ITEM(tails, c);
		Py_ssize_t w = PyLong_AsSsize_t(PyTuple_GET_ITEM(widths, c));
		if (w == -1 && PyErr_Occurred())
			return NULL;
		if (!PyBytes_CheckExact(PyTuple_GET_ITEM(keys, c)) ||
		    !PyBytes_CheckExact(PyTuple_GET_ITEM(dtypes, c)) || w < 1 || w > 64 ||
		    !PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) > 2)
			goto bad;
		ntail[c] = PyTuple_GET_SIZE(t);
		per[c] = w;
		for (Py_ssize_t d = 0; d < ntail[c]; d++) {
			tail[c][d] = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, d));
			if (tail[c][d] == -1 && PyErr_Occurred())
				return NULL;
			if (tail[c][d] < 1 || tail[c][d] > ((Py_ssize_t)1 << 20))
				goto bad;
			per[c] *= tail[c][d];
		}
	}
	if (compact_keys(fields) < 0 || !(rows = PyTuple_New(m)) || !(datas = PyTuple_New(m)))
		goto out;
	for (Py_ssize_t c = 0; c < m; c++) {
		PyObject *r = PyList_New(k), *d = PyList_New(k);
		PyTuple_SET_ITEM(rows, c, r);
		PyTuple_SET_ITEM(datas, c, d);
		if (!r || !d)
			goto out;
	}
	for (Py_ssize_t i = 0; i < k; i++) {
		PyObject *w = PyList_GET_ITEM(items, i);
		if (!PyDict_CheckExact(w))
			goto none;
		for (Py_ssize_t c = 0; c < m; c++) {
			PyObject *a = PyDict_GetItem(w, PyTuple_GET_ITEM(keys, c)), *data, *n_o;
			Py_ssize_t n;
			if (!a || !(data = column_data(a, fields, PyTuple_GET_ITEM(dtypes, c), -1,
						       per[c], tail[c], ntail[c], &n)))
				goto none;
			if (!(n_o = PyLong_FromSsize_t(n)))
				goto out;
			PyList_SET_ITEM(PyTuple_GET_ITEM(rows, c), i, n_o);
			Py_INCREF(data);
			PyList_SET_ITEM(PyTuple_GET_ITEM(datas, c), i, data);
		}
	}
	out = PyTuple_Pack(2, rows, datas);
	goto out;
none:
	out = Py_None;
	Py_INCREF(out);
	goto out;
bad:
	PyErr_SetString(
		PyExc_ValueError,
		"compact_columns: m keys, dtypes, widths (1..64) and tails (up to 2 sizes)");
out:
	for (int f = 0; f < 5; f++)
		Py_XDECREF(fields[f]);
	Py_XDECREF(rows);
	Py_XDECREF(datas);
	return out;
}

/* predictor_links(table, itemsize, (left, right, is_leaf), counts): the
 * node tables of HistGradientBoosting predictors one after another in
 * table (a C-contiguous buffer of itemsize-byte records; left and right
 * the offsets of little-endian uint32 fields, is_leaf of a uint8 one),
 * counts (a list of ints) each one's node count. Bytes of a flag a node,
 * 1 for an inner one, when every is_leaf is 0 or 1 and every predictor's
 * links are a tree's: an inner node's children after it and inside its
 * table, no node a child twice, n - 1 children in a table of n; else None.
 * (predictor_decode's rules: _nodes.check_links checks them with numpy
 * where this is not built.) */
PyObject *mpk_predictor_links(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *table, *counts, *out = NULL;
	Py_ssize_t itemsize, ol, orr, oleaf;
	if (!PyArg_ParseTuple(args, "On(nnn)O!:predictor_links", &table, &itemsize, &ol, &orr,
			      &oleaf, &PyList_Type, &counts))
		return NULL;
	Py_buffer b;
	if (PyObject_GetBuffer(table, &b, PyBUF_C_CONTIGUOUS) < 0)
		return NULL;
	if (itemsize < 1 || ol < 0 || orr < 0 || oleaf < 0 || ol > itemsize - 4 ||
	    orr > itemsize - 4 || oleaf > itemsize - 1 || b.len % itemsize) {
		PyErr_SetString(PyExc_ValueError, "predictor_links: a layout that does not fit");
		goto done;
	}
	Py_ssize_t total = b.len / itemsize, k = PyList_GET_SIZE(counts), sum = 0, most = 0;
	for (Py_ssize_t i = 0; i < k; i++) {
		Py_ssize_t n = PyLong_AsSsize_t(PyList_GET_ITEM(counts, i));
		if (n == -1 && PyErr_Occurred())
			goto done;
		if (n < 1 || n > total - sum) {
			out = Py_NewRef(Py_None);
			goto done;
		}
		sum += n;
		most = n > most ? n : most;
	}
	if (sum != total) {
		out = Py_NewRef(Py_None);
		goto done;
	}
	/* counts are within the table: marks is at most its node count */
	unsigned char *marks = PyMem_Malloc(most ? (size_t)most : 1);
	if (!marks || !(out = PyBytes_FromStringAndSize(NULL, total))) {
		PyMem_Free(marks);
		if (!PyErr_Occurred())
			PyErr_NoMemory();
		goto done;
	}
	const unsigned char *rec = b.buf;
	char *inner = PyBytes_AS_STRING(out);
	for (Py_ssize_t i = 0, at = 0; i < k; i++) {
		Py_ssize_t n = PyLong_AsSsize_t(PyList_GET_ITEM(counts, i)), m = 0;
		memset(marks, 0, (size_t)n);
		for (Py_ssize_t j = 0; j < n; j++, at++, rec += itemsize) {
			uint32_t l, r;
			if (rec[oleaf] > 1)
				goto bad;
			inner[at] = !rec[oleaf];
			if (rec[oleaf])
				continue;
			memcpy(&l, rec + ol, 4);
			memcpy(&r, rec + orr, 4);
			if (!child_pair(l, r, j, n, marks))
				goto bad;
			m++;
		}
		if (2 * m != n - 1)
			goto bad;
	}
	PyMem_Free(marks);
	goto done;
bad:
	PyMem_Free(marks);
	Py_SETREF(out, Py_NewRef(Py_None));
done:
	PyBuffer_Release(&b);
	return out;
}
