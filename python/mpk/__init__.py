"""mpk -- save and load scikit-learn models as MsgPack model archives.

    import mpk
    mpk.save(model, "model.mpk")                   # compact (msgpack-numpy) arrays
    mpk.save(model, "model.mpk", arrays="nested")  # arrays as nested lists
    model = mpk.load("model.mpk")

Loading is safe by construction: only classes in ``mpk.ALLOWED_CLASSES`` are
built, only allow-listed attributes are set, every value is type-checked, and
nothing is unpickled, imported or called by name from the file.  Anything
else raises ``mpk.FormatError`` naming the place in the archive.
See docs/mpk.md.
"""

from ._model import dumps, load, loads, save
from ._specs import ALLOWED_CLASSES
from .errors import FormatError

__all__ = ["save", "load", "dumps", "loads", "FormatError", "ALLOWED_CLASSES"]
__version__ = "0.1.0"
