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

from ._helpers import HELPERS as _HELPERS
from ._model import ParamDefaultWarning, dumps, load, loads, save
from ._schema import SCHEMA as _SCHEMA
from ._specs import BY_NAME as _LEGACY
from .errors import FormatError

# every class name an archive may hold: hand-specified, generic, helpers
ALLOWED_CLASSES = tuple(sorted(set(_LEGACY) | set(_SCHEMA) | set(_HELPERS)))

__all__ = ["save", "load", "dumps", "loads", "FormatError", "ParamDefaultWarning", "ALLOWED_CLASSES"]
__version__ = "0.1.0"
