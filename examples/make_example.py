"""Regenerates examples/iris_logreg.mpk, the model the README mounts.

    PYTHONPATH=python /usr/bin/python3 examples/make_example.py
"""
import os
import sys

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import mpk  # noqa: E402

X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=200, C=0.5).fit(X, y)
out = os.path.join(os.path.dirname(__file__), "iris_logreg.mpk")
mpk.save(model, out)
print(out, os.path.getsize(out), "bytes")
