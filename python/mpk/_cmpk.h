/* mpk._cmpk: the functions of mpk's C part, one file per job. */
#ifndef MPK_CMPK_H
#define MPK_CMPK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyObject *mpk_tree_nodes(PyObject *self, PyObject *args); /* _cmpk_tree.c */

#endif
