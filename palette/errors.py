"""Every error palette raises derives from ``PaletteError``.

Each also derives from the built-in exception a caller would expect (``ValueError`` for
bad input, ``KeyError`` for an unknown name, ``ConnectionError`` for a store that does
not answer), so ``except ValueError`` keeps working; ``except PaletteError`` catches
everything palette raises on purpose. The DSL's errors (``palette.dsl.DSLError`` and its
subclasses) derive from it too.

>>> from palette import PaletteError, NotRegistered
>>> issubclass(NotRegistered, PaletteError) and issubclass(NotRegistered, KeyError)
True
"""
from __future__ import annotations


class PaletteError(Exception):
    """The root of palette's errors."""


class InvalidArgument(PaletteError, ValueError):
    """An argument palette cannot use (a definition, an option, a setting): the message
    names it and what it accepts."""


class InvalidArgumentType(InvalidArgument, TypeError):
    """An argument of a type palette cannot use."""


class JobError(PaletteError, ValueError):
    """A job whose arguments or data cannot work; nothing was written."""


# -- feature store -----------------------------------------------------------------------

class RegistryError(PaletteError, ValueError):
    """A registration that is invalid or incompatible with what is registered, or a
    registry file this palette cannot read."""


class RegistryConflict(RegistryError):
    """Other writers kept committing to the registry while a registration was checked: run it again."""


class UnknownFeatureType(RegistryError, KeyError):
    """A feature type name the types table does not know (a KeyError too: the table is a mapping)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotRegistered(PaletteError, KeyError):
    """An entity, feature group or feature that is not in the registry."""

    def __str__(self):
        return self.args[0] if self.args else ""


class IngestError(PaletteError, ValueError):
    """A DataFrame that does not fit its feature group; nothing was written."""


class FeatureLookupError(PaletteError, ValueError):
    """A lookup whose input does not fit the feature group: a join key column missing or
    of the wrong type, a group without data, a model without feature definitions."""


class NotConfigured(PaletteError, LookupError):
    """No feature store root or online store was given, configured or set in the environment."""


class DeltaJarsMissing(PaletteError, RuntimeError):
    """The Delta Lake jars are not in the local Maven repository."""


class InvalidS3Endpoint(PaletteError, ValueError):
    """An S3 endpoint (``AWS_ENDPOINT_URL``) that is not an http(s) URL."""


# -- online store ------------------------------------------------------------------------

class OnlineStoreError(PaletteError):
    """A problem with an online store."""


class SourceUnavailable(PaletteError, ConnectionError):
    """A source of feature values (the online store, an RPC service) did not answer in
    time and the request cannot be answered without it: a 503, never the caller's fault."""


class OnlineStoreUnavailable(OnlineStoreError, SourceUnavailable):
    """The online store did not answer (down, too slow, file missing or unreadable).
    The message names the store's URL (without credentials) and the cause."""


class BadStoreURL(OnlineStoreError, ValueError):
    """An online store URL palette cannot open: an unknown scheme, or a malformed one."""


class OnlineSchemaMismatch(OnlineStoreError, ValueError):
    """A feature group in the online store does not match the definition that reads or
    writes it (a missing group or feature, a different type or key)."""


class RpcUnavailable(SourceUnavailable):
    """An RPC feature group's service failed (timeout, error, open breaker, a malformed
    answer) for a feature whose fallback is to fail the request. ``group`` names it."""

    def __init__(self, message: str, group: str = "", reason: str = ""):
        super().__init__(message)
        self.group, self.reason = group, reason


class MaterializeError(PaletteError, ValueError):
    """A materialization that cannot start (unknown group, no data); nothing was written."""


# -- serving runtime -----------------------------------------------------------------------

class UnsupportedStageError(PaletteError, ValueError):
    """A saved stage whose class (or setting) the JVM-free runtime cannot score."""


class ArtifactError(PaletteError, ValueError):
    """A saved model directory that cannot be read: missing parts, or written by a newer
    palette (upgrade palette to read it)."""


class ScoringError(PaletteError, ValueError):
    """A row a stage cannot score, as Spark's ``transform`` fails on it too: a null or NaN
    where the stage takes none, an unseen label under ``handleInvalid='error'``, a vector of
    the wrong size. The message names the stage and the column."""


class ScoringTypeError(ScoringError, TypeError):
    """A row whose column holds a value of a type the stage cannot take."""


class MissingColumn(ScoringError, KeyError):
    """A row without a column the stage reads."""

    def __str__(self):
        return self.args[0] if self.args else ""


# -- parity ------------------------------------------------------------------------------

class ParityError(PaletteError, RuntimeError):
    """The parity harness could not compare the two paths (a side failed to score, or the
    model and the data do not fit): not a mismatch, which a ``ParityReport`` reports."""


__all__ = ["PaletteError", "UnknownFeatureType", "InvalidArgument", "InvalidArgumentType", "JobError", "ScoringError", "ScoringTypeError",
           "MissingColumn", "RegistryError", "RegistryConflict", "NotRegistered", "IngestError", "FeatureLookupError",
           "NotConfigured", "DeltaJarsMissing", "InvalidS3Endpoint", "OnlineStoreError", "OnlineStoreUnavailable", "SourceUnavailable", "RpcUnavailable", "BadStoreURL", "OnlineSchemaMismatch",
           "MaterializeError", "UnsupportedStageError", "ArtifactError", "ParityError"]
