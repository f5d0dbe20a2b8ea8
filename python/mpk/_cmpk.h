/* mpk._cmpk: the functions of mpk's C part, one file per job. */
#ifndef MPK_CMPK_H
#define MPK_CMPK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_DEPTH 1024 /* containers inside one another, as msgpack allows */

/* would a and b pack to the same MsgPack bytes? 1, 0, or -1 with an exception */
int mpk_same_bits(PyObject *a, PyObject *b, int depth);	       /* _cmpk.c */
PyObject *mpk_unpack(PyObject *self, PyObject *args);	       /* _cmpk_unpack.c */
PyObject *mpk_unpack_fd(PyObject *self, PyObject *args);       /* _cmpk_unpack.c */
PyObject *mpk_tree_columns(PyObject *self, PyObject *args);    /* _cmpk_tree.c */
PyObject *mpk_tree_fill(PyObject *self, PyObject *args);       /* _cmpk_tree.c */
PyObject *mpk_compact_columns(PyObject *self, PyObject *args); /* _cmpk_tree.c */

#endif
