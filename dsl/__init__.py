"""The palette feature DSL: parse text or build expressions, then evaluate them in
Python (one row, no Spark) or compile them to a Spark Column.

>>> from palette.dsl import parse, evaluate
>>> evaluate('nFill(nVal("basis:prep_time"), -1)', {"prep_time": None})
-1.0
>>> evaluate(parse('regionId(nVal("lat"), nVal("lng"))'), {"lat": 57.64911, "lng": 10.40744})
'u4pruy'
"""
from .ast import NODE_CLASSES, Binary, Call, Literal, Node, Read, Unary
from .errors import (DSLError, DSLInputError, DSLLimitError, DSLSyntaxError, DSLTypeError,
                     DSLUnsupportedError)
from .parser import parse
from .python_backend import evaluate, to_python

__all__ = ["parse", "evaluate", "to_python", "to_column", "DSLError", "DSLSyntaxError", "DSLTypeError",
           "DSLLimitError", "DSLInputError", "DSLUnsupportedError", "Node", "Literal", "Read", "Unary",
           "Binary", "Call", "NODE_CLASSES"]


def to_column(expr, schema=None, **kwargs):
    """Compile an expression (or DSL text) to a native ``pyspark.sql.Column``.

    Imports pyspark; everything else in ``palette.dsl`` runs without it.
    """
    from .spark_backend import to_column as _to_column
    return _to_column(expr, schema=schema, **kwargs)
