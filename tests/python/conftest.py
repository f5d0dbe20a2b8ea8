import os
import sys

# make `import mpk` work without PYTHONPATH too
_PYDIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "python")
if _PYDIR not in sys.path:
    sys.path.insert(0, _PYDIR)
