"""Saving palette stages: Spark's DefaultParams layout plus a palette format version.

``metadata/`` holds one JSON line (class, uid, paramMap, defaultParamMap, sparkVersion)
with ``"paletteFormatVersion"`` added; that directory is all the JVM-free runtime reads.
"""
from __future__ import annotations

from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLWritable

FORMAT_VERSION = 1


class PaletteWriter(DefaultParamsWriter):
    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession,
                                         extraMetadata={"paletteFormatVersion": FORMAT_VERSION})


class PaletteReader(DefaultParamsReader):
    def load(self, path: str):
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        version = metadata.get("paletteFormatVersion")
        if version is None or version > FORMAT_VERSION:
            raise ValueError(f"{path} was saved with palette format version {version}; this palette "
                             f"reads versions up to {FORMAT_VERSION}: upgrade palette to load it")
        return super().load(path)


class PaletteWritable(MLWritable):
    def write(self):
        return PaletteWriter(self)


class PaletteReadable(MLReadable):
    @classmethod
    def read(cls):
        return PaletteReader(cls)
