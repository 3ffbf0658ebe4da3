"""The palette feature DSL: parse text or build expressions, then evaluate them in
Python (one row, no Spark) or compile them to a Spark Column with
``palette.dsl.spark_backend.to_column`` (the one module here that imports pyspark).

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

__all__ = ["parse", "evaluate", "to_python", "DSLError", "DSLSyntaxError", "DSLTypeError",
           "DSLLimitError", "DSLInputError", "DSLUnsupportedError", "Node", "Literal", "Read", "Unary",
           "Binary", "Call", "NODE_CLASSES"]

