"""The CuPy backend: the array-API names older CuPy releases lack are filled in as for NumPy
(CuPy follows NumPy's API, so NumPy's shims serve it as they are)."""
from .numpy import shims

__all__ = ["shims"]
