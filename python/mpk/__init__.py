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

# mpk's C part (_cmpk, the decoder behind load) may sit in another folder of
# sys.path: a meson build puts it in build/python/mpk/.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from ._helpers import HELPERS as _HELPERS  # noqa: E402
from ._model import ParamDefaultWarning, load, loads  # noqa: E402
from ._save import dumps, save  # noqa: E402
from ._schema import SCHEMA as _SCHEMA  # noqa: E402
from ._specs import BY_NAME as _LEGACY  # noqa: E402
from .errors import FormatError  # noqa: E402

# every class name an archive may hold: hand-specified, generic, helpers
ALLOWED_CLASSES = tuple(sorted(set(_LEGACY) | set(_SCHEMA) | set(_HELPERS)))

__all__ = ["save", "load", "dumps", "loads", "FormatError", "ParamDefaultWarning", "ALLOWED_CLASSES"]
__version__ = "0.1.0"
