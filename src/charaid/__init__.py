"""charaid: learn to recognise the characters of an anime, from episodes to a face recogniser."""

from charaid.blas_core import choose_openblas_core

# before any charaid module imports numpy: OpenBLAS reads its kernel choice when it loads
choose_openblas_core()

__version__ = "0.1.0"
