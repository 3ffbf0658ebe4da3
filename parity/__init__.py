"""Parity between Spark's ``transform()`` and the single-row ``scoreInstance()``."""
from .harness import Mismatch, ParityReport, assert_parity, check_parity, same_value

__all__ = ["check_parity", "assert_parity", "ParityReport", "Mismatch", "same_value"]
