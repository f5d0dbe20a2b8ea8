/* mpk._cmpk.tree_nodes: the node tables of many decision trees, checked
 * and laid out in one pass (python/mpk/_forest.py, batched forest loads).
 *
 * tree_nodes(cols, ns, widths, offsets, itemsize, n_features)
 *
 *   cols      7 lists (or tuples) of k bytes: for each of k trees its children_left,
 *             children_right, feature, threshold, impurity, n_node_samples
 *             and weighted_n_node_samples column, little-endian
 *   ns        the k node counts
 *   widths    the 7 columns' item sizes: 4 or 8 for the integer columns
 *             (0, 1, 2, 5: int32 or int64), 8 for the float64 ones
 *   offsets   the 7 fields' byte offsets in one node (scikit-learn's
 *             NODE_DTYPE, whose fields are all 8 bytes wide)
 *   itemsize  NODE_DTYPE's item size
 *
 * returns a bytearray holding the k tables one after another, each node
 * NODE_DTYPE (integers widened to int64), or None when a column's length
 * is not its tree's node count times its width, or a tree's links are not
 * a tree's: the rules of mpk's check_tree_links (_helpers.py), which the
 * caller then runs to name the problem. Node j is a leaf when its left
 * child is -1, and its right child is then -1 too; an inner node's
 * children lie in (j, n) and its feature in [0, n_features); every node
 * but the root is the child of exactly one node, which with children after
 * their parent leaves no cycle and nothing unreachable. */

#include "_cmpk.h"

#include <stdint.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tree_nodes copies little-endian columns as they are"
#endif

enum { LEFT, RIGHT, FEATURE, N_NODE_SAMPLES = 5, NCOLS = 7 };

static int64_t get_int(const unsigned char *p, Py_ssize_t j, int width)
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

/* Tree links of n nodes laid out in out; marks has n bytes. */
static int links_ok(const unsigned char *out, Py_ssize_t n, Py_ssize_t itemsize,
		    const Py_ssize_t *off, int64_t n_features, unsigned char *marks)
{
	Py_ssize_t inner = 0;
	if (n < 1)
		return 0;
	memset(marks, 0, (size_t)n);
	for (Py_ssize_t j = 0; j < n; j++) {
		const unsigned char *node = out + j * itemsize;
		int64_t l, r, f;
		memcpy(&l, node + off[LEFT], 8);
		memcpy(&r, node + off[RIGHT], 8);
		memcpy(&f, node + off[FEATURE], 8);
		if (l == -1 && r == -1)
			continue;
		if (l <= j || l >= n || r <= j || r >= n || marks[l] || marks[r] || l == r ||
		    f < 0 || f >= n_features)
			return 0;
		marks[l] = marks[r] = 1;
		inner++;
	}
	return 2 * inner == n - 1;
}

/* Tree i's node table: its columns' values in NODE_DTYPE's fields. */
static void fill(unsigned char *table, Py_ssize_t n, PyObject *cols, Py_ssize_t i,
		 const Py_ssize_t *width, const Py_ssize_t *off, Py_ssize_t itemsize)
{
	if (itemsize != 8 * NCOLS) /* bytes no field covers */
		memset(table, 0, (size_t)(n * itemsize));
	for (int c = 0; c < NCOLS; c++) {
		const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(
			PySequence_Fast_GET_ITEM(PyTuple_GET_ITEM(cols, c), i));
		int is_int = c <= FEATURE || c == N_NODE_SAMPLES;
		for (Py_ssize_t j = 0; j < n; j++) {
			unsigned char *dst = table + j * itemsize + off[c];
			if (is_int) {
				int64_t v = get_int(src, j, (int)width[c]);
				memcpy(dst, &v, 8);
			} else {
				memcpy(dst, src + 8 * j, 8);
			}
		}
	}
}

PyObject *mpk_tree_nodes(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *cols, *ns, *widths_o, *offsets_o;
	Py_ssize_t itemsize, width[NCOLS], off[NCOLS];
	long long n_features;
	if (!PyArg_ParseTuple(args, "O!O!O!O!nL:tree_nodes", &PyTuple_Type, &cols, &PyList_Type,
			      &ns, &PyTuple_Type, &widths_o, &PyTuple_Type, &offsets_o, &itemsize,
			      &n_features))
		return NULL;
	Py_ssize_t k = PyList_GET_SIZE(ns);
	if (PyTuple_GET_SIZE(cols) != NCOLS || PyTuple_GET_SIZE(widths_o) != NCOLS ||
	    PyTuple_GET_SIZE(offsets_o) != NCOLS) {
		PyErr_SetString(PyExc_ValueError, "tree_nodes: 7 columns, widths and offsets");
		return NULL;
	}
	for (int c = 0; c < NCOLS; c++) {
		PyObject *col = PyTuple_GET_ITEM(cols, c);
		width[c] = PyLong_AsSsize_t(PyTuple_GET_ITEM(widths_o, c));
		off[c] = PyLong_AsSsize_t(PyTuple_GET_ITEM(offsets_o, c));
		if (PyErr_Occurred())
			return NULL;
		int is_int = c <= FEATURE || c == N_NODE_SAMPLES;
		if (!(PyList_CheckExact(col) || PyTuple_CheckExact(col)) ||
		    PySequence_Fast_GET_SIZE(col) != k || (width[c] != 4 && width[c] != 8) ||
		    (!is_int && width[c] != 8) || off[c] < 0 || off[c] > itemsize - 8) {
			PyErr_SetString(PyExc_ValueError,
					"tree_nodes: a column, width or offset is malformed");
			return NULL;
		}
	}
	/* node counts, and every column's length, before anything is allocated */
	Py_ssize_t total = 0, most = 0;
	for (Py_ssize_t i = 0; i < k; i++) {
		Py_ssize_t n = PyLong_AsSsize_t(PyList_GET_ITEM(ns, i));
		if (n == -1 && PyErr_Occurred())
			return NULL;
		if (n < 1 || n > (PY_SSIZE_T_MAX / itemsize - total))
			Py_RETURN_NONE;
		for (int c = 0; c < NCOLS; c++) {
			PyObject *b = PySequence_Fast_GET_ITEM(PyTuple_GET_ITEM(cols, c), i);
			if (!PyBytes_CheckExact(b) || PyBytes_GET_SIZE(b) / width[c] != n ||
			    PyBytes_GET_SIZE(b) % width[c])
				Py_RETURN_NONE;
		}
		total += n;
		most = n > most ? n : most;
	}
	/* One buffer for all the trees. A buffer per tree measured 6x slower
	 * over repeated loads: glibc trims its heap after each load, so each
	 * load faulted its tables in afresh, where one big mapped buffer
	 * raises malloc's thresholds once and is reused. */
	PyObject *buf = PyByteArray_FromStringAndSize(NULL, total * itemsize);
	unsigned char *marks = PyMem_Malloc((size_t)most + 1);
	if (!buf || !marks) {
		Py_XDECREF(buf);
		PyMem_Free(marks);
		return PyErr_Occurred() ? NULL : PyErr_NoMemory();
	}
	unsigned char *table = (unsigned char *)PyByteArray_AS_STRING(buf);
	int ok = 1;
	for (Py_ssize_t i = 0; i < k && ok; i++) {
		Py_ssize_t n = PyLong_AsSsize_t(PyList_GET_ITEM(ns, i));
		fill(table, n, cols, i, width, off, itemsize);
		ok = links_ok(table, n, itemsize, off, n_features, marks);
		table += n * itemsize;
	}
	PyMem_Free(marks);
	if (ok)
		return buf;
	Py_DECREF(buf);
	Py_RETURN_NONE;
}
