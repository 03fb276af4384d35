"""Reading and writing state: `checkpoint.save` / `checkpoint.restore`."""

from gradxform.io import checkpoint

__all__ = ["checkpoint"]
