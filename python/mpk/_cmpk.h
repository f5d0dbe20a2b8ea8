/* mpk._cmpk: the functions of mpk's C part, one file per job. */
#ifndef MPK_CMPK_H
#define MPK_CMPK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#define MAX_DEPTH 1024 /* containers inside one another, as msgpack allows */

/* would a and b pack to the same MsgPack bytes? 1, 0, or -1 with an exception */
int mpk_same_bits(PyObject *a, PyObject *b, int depth);	       /* _cmpk.c */
PyObject *mpk_unpack(PyObject *self, PyObject *args);	       /* _cmpk_unpack.c */
PyObject *mpk_unpack_fd(PyObject *self, PyObject *args);       /* _cmpk_unpack.c */
PyObject *mpk_tree_columns(PyObject *self, PyObject *args);    /* _cmpk_tree.c */
PyObject *mpk_tree_fill(PyObject *self, PyObject *args);       /* _cmpk_tree.c */
PyObject *mpk_compact_columns(PyObject *self, PyObject *args); /* _cmpk_tree.c */
PyObject *mpk_predictor_links(PyObject *self, PyObject *args); /* _cmpk_tree.c */

/* _cmpk_tree.c: one decision tree's node table, for _cmpk_maker.c (see
 * there): its 8 arrays (NODE_DTYPE's 7 fields, then value) */
enum { TREE_FIELDS = 7, TREE_COLS = 8 };
#define TREE_TAIL_MAX ((Py_ssize_t)1 << 20) /* value's trailing sizes laid out here */
int mpk_tree_widths(PyObject *dtypes, const Py_ssize_t *tail, int *width, Py_ssize_t *per);
int mpk_tree_data(PyObject *t, const Py_ssize_t *at, Py_ssize_t n, const Py_ssize_t *per,
		  const Py_ssize_t *tail, PyObject **data);
/* marks: n + 1 bytes */
int mpk_tree_links(PyObject *const *col, const int *width, Py_ssize_t n, int64_t n_features,
		   unsigned char *marks);
void mpk_tree_lay(unsigned char *table, Py_ssize_t itemsize, const Py_ssize_t *off,
		  const unsigned char *const *src, const int *width, Py_ssize_t n);

/* _cmpk_maker.c: the type TreeMaker (a later tree built as it is decoded) */
extern PyTypeObject mpk_tree_maker_type;

#endif
