"""Embedding features: versioned tables of vectors (``kind="embedding"`` groups of
``vector(d)`` features), compressed with a measured price, and compared before a new
version reaches a model (``docs/embeddings.md``).

- ``compress``: top-k entities kept, the rest one UNK vector, float16/int8 quantization;
  a new version and a ``CompressReport`` (memory before/after, the price on a model);
- ``compare``: a ``StabilityReport`` of two versions (Procrustes-aligned drift, k-NN
  overlap, eigenspace instability) and the change of the models that read the group;
- ``read_version`` / ``write_version``: a version's table as numpy (Spark);
- ``stability``, ``quantize``, ``downstream``: the numpy measures, the row codecs, JVM-free
  scoring with another version substituted.

>>> from palette.embeddings import quantize
>>> import numpy as np
>>> v = quantize.fixed_point(np.array([[0.3, -1.2, 0.05]], np.float32), "int8")
>>> bool((quantize.decode_int8(quantize.encode_int8(v)) == v).all())
True
"""
from __future__ import annotations

from palette.lazy import lazy_exports

_LAZY = {"compress": ".compression", "compare": ".comparison", "read_version": ".tables", "write_version": ".tables",
         "Version": ".tables", "StabilityReport": ".report", "CompressReport": ".report",
         "downstream": ".downstream", "SubstitutedStore": ".downstream", "summary": ".stability"}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
