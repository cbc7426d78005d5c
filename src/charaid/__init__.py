"""charaid: learn to recognise the characters of an anime, from episodes to a face recogniser."""

import sys

from charaid.blas_core import choose_openblas_core, warn_if_loaded_generic

# before any charaid module imports numpy: OpenBLAS reads its kernel choice when it loads
_numpy_first = "numpy" in sys.modules
choose_openblas_core()
if _numpy_first:
    warn_if_loaded_generic()

__version__ = "0.1.0"
