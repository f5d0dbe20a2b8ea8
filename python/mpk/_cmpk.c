/* mpk._cmpk: mpk's C part, the module (one file per job):
 *
 *   _cmpk_unpack.c  unpack, unpack_fd: the MsgPack decoder behind mpk.load
 *   _cmpk_lock.c    the decoder's lockstep: an ensemble's trees as their
 *                   first one with holes
 *   _cmpk_tree.c    tree_columns, tree_fill, compact_columns: decision trees'
 *                   node tables
 *   _cmpk_maker.c   TreeMaker: a later tree of an ensemble built as it is
 *                   decoded
 *   here            identical: would two decoded values pack the same?
 *                   holes: a decoded value's values at a pattern's holes
 *
 * mpk works without it (python/mpk/_unpack.py says how). */

#include "_cmpk.h"

#include <string.h>

/* Would a and b pack to the same MsgPack bytes? Lists and tuples alike;
 * otherwise the same type (1, 1.0 and True differ), floats bit for bit
 * (-0.0 is not 0.0; a NaN equals itself), maps in the same key order.
 * With hole set, b is a pattern: where it holds hole, a may hold anything,
 * which is appended to caps (in b's order). 1 same, 0 not, -1 an error. */
static int same(PyObject *a, PyObject *b, PyObject *hole, PyObject *caps, int depth)
{
	if (depth > MAX_DEPTH) {
		PyErr_SetString(PyExc_ValueError, "nested too deeply");
		return -1;
	}
	if (hole && b == hole)
		return PyList_Append(caps, a) < 0 ? -1 : 1;
	PyTypeObject *ta = Py_TYPE(a), *tb = Py_TYPE(b);
	if ((ta == &PyList_Type || ta == &PyTuple_Type) &&
	    (tb == &PyList_Type || tb == &PyTuple_Type)) {
		Py_ssize_t n = PySequence_Fast_GET_SIZE(a);
		if (n != PySequence_Fast_GET_SIZE(b))
			return 0;
		for (Py_ssize_t i = 0; i < n; i++) {
			int r = same(PySequence_Fast_GET_ITEM(a, i), PySequence_Fast_GET_ITEM(b, i),
				     hole, caps, depth + 1);
			if (r != 1)
				return r;
		}
		return 1;
	}
	if (ta != tb)
		return 0;
	if (a == b && !hole) /* (a pattern's own containers hold holes) */
		return 1;
	if (ta == &PyFloat_Type) {
		double x = PyFloat_AS_DOUBLE(a), y = PyFloat_AS_DOUBLE(b);
		return memcmp(&x, &y, sizeof x) == 0;
	}
	if (ta == &PyDict_Type) {
		Py_ssize_t pa = 0, pb = 0;
		PyObject *ka, *va, *kb, *vb;
		if (PyDict_GET_SIZE(a) != PyDict_GET_SIZE(b))
			return 0;
		while (PyDict_Next(a, &pa, &ka, &va) && PyDict_Next(b, &pb, &kb, &vb)) {
			int r = same(ka, kb, NULL, NULL, depth + 1); /* keys are never holes */
			if (r == 1)
				r = same(va, vb, hole, caps, depth + 1);
			if (r != 1)
				return r;
		}
		return 1;
	}
	return PyObject_RichCompareBool(a, b, Py_EQ);
}

int mpk_same_bits(PyObject *a, PyObject *b, int depth)
{
	return same(a, b, NULL, NULL, depth);
}

static PyObject *identical(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *a, *b;
	if (!PyArg_ParseTuple(args, "OO:identical", &a, &b))
		return NULL;
	int r = mpk_same_bits(a, b, 0);
	return r < 0 ? NULL : PyBool_FromLong(r);
}

/* holes(value, pattern, hole): the values value holds where pattern holds
 * hole, in pattern's order, when value is pattern with those filled in
 * (as identical compares); else None. */
static PyObject *holes(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *a, *pat, *hole;
	if (!PyArg_ParseTuple(args, "OOO:holes", &a, &pat, &hole))
		return NULL;
	PyObject *caps = PyList_New(0), *r = NULL;
	if (!caps)
		return NULL;
	int same_ = same(a, pat, hole, caps, 0);
	if (same_ == 1)
		r = PyList_AsTuple(caps);
	else if (same_ == 0)
		r = Py_NewRef(Py_None);
	Py_DECREF(caps);
	return r;
}

static PyMethodDef methods[] = {
	{"unpack", mpk_unpack, METH_VARARGS,
	 "unpack(data, text_maps, ext_hook[, lockstep]) -> (object, bytes used, vocabularies, "
	 "more): see _cmpk_unpack.c"},
	{"unpack_fd", mpk_unpack_fd, METH_VARARGS,
	 "unpack_fd(fd, text_maps, ext_hook[, lockstep]) -> (object, bytes used, vocabularies, "
	 "more): see _cmpk_unpack.c"},
	{"identical", identical, METH_VARARGS,
	 "identical(a, b): would a and b pack to the same MsgPack bytes?"},
	{"holes", holes, METH_VARARGS,
	 "holes(value, pattern, hole): value's values at pattern's holes, or None"},
	{"tree_columns", mpk_tree_columns, METH_VARARGS,
	 "decision trees' node-table columns, checked: see _cmpk_tree.c"},
	{"compact_columns", mpk_compact_columns, METH_VARARGS,
	 "many maps' compact arrays, checked: see _cmpk_tree.c"},
	{"tree_fill", mpk_tree_fill, METH_VARARGS,
	 "one decision tree's node table, laid out: see _cmpk_tree.c"},
	{"predictor_links", mpk_predictor_links, METH_VARARGS,
	 "HistGradientBoosting predictors' node links, checked: see _cmpk_tree.c"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT,
	"_cmpk",
	"The MsgPack decoder behind mpk.load.",
	-1,
	methods,
	NULL,
	NULL,
	NULL,
	NULL,
};

PyMODINIT_FUNC PyInit__cmpk(void)
{
	if (PyType_Ready(&mpk_tree_maker_type) < 0)
		return NULL;
	PyObject *mod = PyModule_Create(&module);
	if (mod && PyModule_AddObjectRef(mod, "TreeMaker", (PyObject *)&mpk_tree_maker_type) < 0)
		Py_CLEAR(mod);
	return mod;
}
