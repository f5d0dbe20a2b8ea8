import os
import sys

# make `import mpk` work without PYTHONPATH too, with its C part where a
# meson build in build/ has made it (build/python/mpk/_cmpk*.so)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PYDIR = os.path.join(_ROOT, "python")
_BUILT = os.path.join(_ROOT, "build", "python")
if _PYDIR not in sys.path:
    sys.path.insert(0, _PYDIR)
if os.path.isdir(_BUILT) and _BUILT not in sys.path:
    sys.path.append(_BUILT)
