"""Saving palette stages: Spark's DefaultParams layout plus what the runtime needs.

``metadata/`` holds one JSON line (class, uid, paramMap, defaultParamMap, sparkVersion)
with ``paletteFormatVersion`` added and, for a stage that reads the feature store,
``paletteDefinitions``: the entities and feature groups it reads (key columns and types,
feature types, max age), so a serving process needs no registry. That directory is all
the JVM-free runtime reads. Saving writes nothing anywhere else.
"""
from __future__ import annotations

from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLWritable

from palette.lookup_plan import Definitions

from .runtime.artifact import FORMAT_VERSION, check_format


class PaletteWriter(DefaultParamsWriter):
    def saveImpl(self, path: str) -> None:
        extra = {"paletteFormatVersion": FORMAT_VERSION}
        definitions = self.instance.featureDefinitions()
        if definitions is not None:
            extra["paletteDefinitions"] = definitions.to_json()
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession, extraMetadata=extra)


class PaletteReader(DefaultParamsReader):
    def load(self, path: str):
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        check_format(metadata, path)
        instance = super().load(path)
        if "paletteDefinitions" in metadata:
            instance._definitions = Definitions.from_json(metadata["paletteDefinitions"])
        return instance


class PaletteWritable(MLWritable):
    def write(self):
        return PaletteWriter(self)


class PaletteReadable(MLReadable):
    @classmethod
    def read(cls):
        return PaletteReader(cls)
