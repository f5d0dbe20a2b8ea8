/* mpk._cmpk.TreeMaker: a later tree of an ensemble built as the decoder
 * reads it (python/mpk/_forest.py's _Prebuild makes one per batch and the
 * lockstep gives it each tree's hole values: _cmpk_lock.c's each).
 *
 * TreeMaker(at, count, depth, keep, dtypes, tail, n_features, n_classes,
 *           layout, tree_type, ndarray, f8, prebuilt)
 *
 *   at          the 16 places of the node-table arrays' shapes and data in
 *               a tree's hole values (as tree_columns takes them)
 *   count, depth  the places of the Tree's node_count and max_depth
 *   keep        the places of the values the batch reads later (the
 *               parameters', node_count and max_depth)
 *   dtypes, tail, n_features  as tree_columns takes them: the first tree's
 *               array dtypes, (n_outputs, max n_classes), n_features
 *   n_classes   the first tree's n_classes (an intp array)
 *   layout      _forest.node_layout(): (NODE_DTYPE, its 7 fields'
 *               offsets, its itemsize)
 *   tree_type, ndarray, f8, prebuilt   sklearn's Tree, numpy.ndarray,
 *               numpy.dtype("<f8"), _forest.Prebuilt
 *
 * maker(caps), caps a tree's hole values (a tuple): when its node count n
 * and depth are ints in range and its arrays pass tree_columns' checks
 * (each exactly n rows; the links a tree's), Prebuilt(tree, kept): tree
 * made as Tree(n_features, n_classes, n_outputs) with __setstate__ of its
 * node table laid out in a buffer the maker reuses (__setstate__ copies
 * it, while it is in the cache) and its value array over the decoded
 * bytes; kept, caps' values at keep (prebuilt is a tuple type, made of the
 * pair). Else caps itself, and the batch
 * builds that tree the generic way, which names the problem.
 *
 * That is _forest.one_table and Tree.__setstate__ as the Python code did
 * them, without a Python frame between a tree's bytes and its Tree. */

#include "_cmpk.h"

#include <string.h>

typedef struct {
	PyObject_HEAD
	Py_ssize_t at[2 * TREE_COLS], count, depth, nkeep, *keep;
	Py_ssize_t tail[2], per[TREE_COLS], off[TREE_FIELDS], itemsize;
	int width[TREE_COLS];
	int64_t n_features;
	PyObject *n_classes, *n_outputs, *n_features_o, *node_dtype, *tree_type, *ndarray, *f8,
		*prebuilt;
	PyObject *buf;	      /* the reused node buffer: a bytearray */
	unsigned char *marks; /* a byte per node of the largest tree checked, and one */
	Py_ssize_t room;      /* marks' size */
	PyObject *names[5];   /* max_depth, node_count, nodes, values, __setstate__ */
} Maker;

/* The non-negative ints of the tuple t into out (n of them): 0, or -1
 * with an exception. */
static int places(PyObject *t, Py_ssize_t n, Py_ssize_t *out, const char *what)
{
	if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != n) {
		PyErr_Format(PyExc_ValueError, "TreeMaker: %s must be a tuple of %zd ints", what,
			     n);
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		out[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, i));
		if (out[i] == -1 && PyErr_Occurred())
			return -1;
		if (out[i] < 0) {
			PyErr_Format(PyExc_ValueError, "TreeMaker: %s must not be negative", what);
			return -1;
		}
	}
	return 0;
}

static PyObject *maker_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *at, *keep, *dtypes, *layout, *offsets, *ncls, *tree_type, *ndarray, *f8,
		*prebuilt;
	Py_ssize_t count, depth, tail[2];
	long long nf;
	if (kw && PyDict_GET_SIZE(kw)) {
		PyErr_SetString(PyExc_TypeError, "TreeMaker takes no keywords");
		return NULL;
	}
	if (!PyArg_ParseTuple(args, "O!nnO!O!(nn)LOO!OOOO:TreeMaker", &PyTuple_Type, &at, &count,
			      &depth, &PyTuple_Type, &keep, &PyTuple_Type, &dtypes, &tail[0],
			      &tail[1], &nf, &ncls, &PyTuple_Type, &layout, &tree_type, &ndarray,
			      &f8, &prebuilt))
		return NULL;
	Maker *m = (Maker *)type->tp_alloc(type, 0);
	if (!m)
		return NULL;
	m->n_classes = Py_NewRef(ncls);
	m->tree_type = Py_NewRef(tree_type);
	m->ndarray = Py_NewRef(ndarray);
	m->f8 = Py_NewRef(f8);
	m->prebuilt = Py_NewRef(prebuilt);
	m->tail[0] = tail[0], m->tail[1] = tail[1];
	if (PyTuple_GET_SIZE(dtypes) != TREE_COLS || PyTuple_GET_SIZE(layout) != 3 || count < 0 ||
	    depth < 0 || nf < 1 || m->tail[0] < 1 || m->tail[1] < 1 || m->tail[0] > TREE_TAIL_MAX ||
	    m->tail[1] > TREE_TAIL_MAX) {
		PyErr_SetString(PyExc_ValueError, "TreeMaker: malformed arguments");
		goto fail;
	}
	m->count = count, m->depth = depth, m->n_features = nf;
	offsets = PyTuple_GET_ITEM(layout, 1);
	m->itemsize = PyLong_AsSsize_t(PyTuple_GET_ITEM(layout, 2));
	if (m->itemsize == -1 && PyErr_Occurred())
		goto fail;
	if (places(at, 2 * TREE_COLS, m->at, "at") < 0 ||
	    places(offsets, TREE_FIELDS, m->off, "offsets") < 0 ||
	    mpk_tree_widths(dtypes, m->tail, m->width, m->per) < 0)
		goto fail;
	if (m->itemsize < 8 || m->itemsize > 4096)
		goto bad_layout;
	for (int c = 0; c < TREE_FIELDS; c++)
		if (m->off[c] > m->itemsize - 8)
			goto bad_layout;
	m->nkeep = PyTuple_GET_SIZE(keep);
	if (!(m->keep = PyMem_Malloc(sizeof *m->keep * (size_t)(m->nkeep + 1)))) {
		PyErr_NoMemory();
		goto fail;
	}
	if (places(keep, m->nkeep, m->keep, "keep") < 0)
		goto fail;
	static const char *names[5] = {"max_depth", "node_count", "nodes", "values",
				       "__setstate__"};
	for (int i = 0; i < 5; i++)
		if (!(m->names[i] = PyUnicode_InternFromString(names[i])))
			goto fail;
	m->node_dtype = Py_NewRef(PyTuple_GET_ITEM(layout, 0));
	if (!(m->n_outputs = PyLong_FromSsize_t(m->tail[0])) ||
	    !(m->n_features_o = PyLong_FromLongLong(nf)) ||
	    !(m->buf = PyByteArray_FromStringAndSize(NULL, 0)))
		goto fail;
	return (PyObject *)m;
bad_layout:
	PyErr_SetString(PyExc_ValueError, "TreeMaker: a node layout whose fields do not fit");
fail:
	Py_DECREF(m);
	return NULL;
}

static void maker_dealloc(Maker *m)
{
	Py_XDECREF(m->n_classes);
	Py_XDECREF(m->n_outputs);
	Py_XDECREF(m->n_features_o);
	Py_XDECREF(m->node_dtype);
	Py_XDECREF(m->tree_type);
	Py_XDECREF(m->ndarray);
	Py_XDECREF(m->f8);
	Py_XDECREF(m->prebuilt);
	Py_XDECREF(m->buf);
	for (int i = 0; i < 5; i++)
		Py_XDECREF(m->names[i]);
	PyMem_Free(m->keep);
	PyMem_Free(m->marks);
	Py_TYPE(m)->tp_free((PyObject *)m);
}

/* v as a Py_ssize_t in [lo, hi] when it is exactly an int; else -1. */
static Py_ssize_t int_in(PyObject *v, Py_ssize_t lo, Py_ssize_t hi)
{
	if (!PyLong_CheckExact(v))
		return -1;
	int overflow;
	long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
	return overflow || x < lo || x > hi ? -1 : (Py_ssize_t)x;
}

/* numpy.ndarray(shape, dtype, buffer) */
static PyObject *array_over(Maker *m, PyObject *shape, PyObject *dtype, PyObject *buffer)
{
	if (!shape)
		return NULL;
	PyObject *a = PyObject_CallFunctionObjArgs(m->ndarray, shape, dtype, buffer, NULL);
	Py_DECREF(shape);
	return a;
}

/* The node table of a tree of n nodes whose arrays' data checked out,
 * laid out in m's buffer, and its value array: 0, or -1 with an
 * exception. */
static int table(Maker *m, PyObject *const *data, Py_ssize_t n, PyObject **nodes, PyObject **values)
{
	if (PyByteArray_GET_SIZE(m->buf) / m->itemsize < n) {
		/* a new one: a view of the old may be alive */
		PyObject *more = PyByteArray_FromStringAndSize(NULL, n * m->itemsize);
		if (!more)
			return -1;
		Py_SETREF(m->buf, more);
	}
	const unsigned char *src[TREE_FIELDS];
	for (int c = 0; c < TREE_FIELDS; c++)
		src[c] = (const unsigned char *)(PyBytes_CheckExact(data[c])
							 ? PyBytes_AS_STRING(data[c])
							 : PyByteArray_AS_STRING(data[c]));
	mpk_tree_lay((unsigned char *)PyByteArray_AS_STRING(m->buf), m->itemsize, m->off, src,
		     m->width, n);
	*nodes = array_over(m, Py_BuildValue("(n)", n), m->node_dtype, m->buf);
	*values = *nodes ? array_over(m, Py_BuildValue("(nnn)", n, m->tail[0], m->tail[1]), m->f8,
				      data[TREE_COLS - 1])
			 : NULL;
	if (*values)
		return 0;
	Py_CLEAR(*nodes);
	return -1;
}

/* Tree(n_features, n_classes, n_outputs) with __setstate__ of its table */
static PyObject *tree(Maker *m, PyObject *caps, PyObject *nodes, PyObject *values)
{
	PyObject *t = PyObject_CallFunctionObjArgs(m->tree_type, m->n_features_o, m->n_classes,
						   m->n_outputs, NULL);
	PyObject *state = t ? PyDict_New() : NULL, *r = NULL;
	if (state && !PyDict_SetItem(state, m->names[0], PyTuple_GET_ITEM(caps, m->depth)) &&
	    !PyDict_SetItem(state, m->names[1], PyTuple_GET_ITEM(caps, m->count)) &&
	    !PyDict_SetItem(state, m->names[2], nodes) &&
	    !PyDict_SetItem(state, m->names[3], values))
		r = PyObject_CallMethodOneArg(t, m->names[4], state);
	Py_XDECREF(state);
	if (!r)
		Py_CLEAR(t);
	Py_XDECREF(r);
	return t;
}

static PyObject *maker_call(Maker *m, PyObject *args, PyObject *kw)
{
	PyObject *caps;
	if (kw && PyDict_GET_SIZE(kw)) {
		PyErr_SetString(PyExc_TypeError, "a TreeMaker takes no keywords");
		return NULL;
	}
	if (!PyArg_UnpackTuple(args, "TreeMaker", 1, 1, &caps))
		return NULL;
	Py_ssize_t size = PyTuple_CheckExact(caps) ? PyTuple_GET_SIZE(caps) : 0, n;
	if (m->count >= size || m->depth >= size)
		return Py_NewRef(caps);
	for (Py_ssize_t i = 0; i < m->nkeep; i++)
		if (m->keep[i] >= size)
			return Py_NewRef(caps);
	PyObject *data[TREE_COLS];
	if ((n = int_in(PyTuple_GET_ITEM(caps, m->count), 1, (Py_ssize_t)1 << 40)) < 0 ||
	    int_in(PyTuple_GET_ITEM(caps, m->depth), 0, ((Py_ssize_t)1 << 31) - 1) < 0 ||
	    !mpk_tree_data(caps, m->at, n, m->per, m->tail, data))
		return Py_NewRef(caps);
	/* marks grown only for a tree whose arrays hold its node count */
	if (n > m->room) {
		unsigned char *more = PyMem_Realloc(m->marks, (size_t)n + 1);
		if (!more)
			return PyErr_NoMemory();
		m->marks = more, m->room = n;
	}
	if (!mpk_tree_links(data, m->width, n, m->n_features, m->marks))
		return Py_NewRef(caps);
	PyObject *nodes, *values, *t = NULL, *kept = NULL, *r = NULL;
	if (table(m, data, n, &nodes, &values) < 0)
		return NULL;
	if ((t = tree(m, caps, nodes, values)) && (kept = PyTuple_New(m->nkeep))) {
		for (Py_ssize_t i = 0; i < m->nkeep; i++)
			PyTuple_SET_ITEM(kept, i, Py_NewRef(PyTuple_GET_ITEM(caps, m->keep[i])));
		PyObject *pair = PyTuple_Pack(2, t, kept);
		r = pair ? PyObject_CallOneArg(m->prebuilt, pair) : NULL;
		Py_XDECREF(pair);
	}
	Py_DECREF(nodes);
	Py_DECREF(values);
	Py_XDECREF(t);
	Py_XDECREF(kept);
	return r;
}

PyTypeObject mpk_tree_maker_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "mpk._cmpk.TreeMaker",
	.tp_basicsize = sizeof(Maker),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "a later tree of an ensemble built as it is decoded: see _cmpk_maker.c",
	.tp_new = maker_new,
	.tp_dealloc = (destructor)maker_dealloc,
	.tp_call = (ternaryfunc)maker_call,
};
