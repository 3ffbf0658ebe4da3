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
        _record_usage(self.instance, path)


def _record_usage(stage, path: str) -> None:
    """Note in the registry which saved model reads which features (for search by model).
    A stage inside a saved PipelineModel records the pipeline's path."""
    refs = stage.paletteRefs() if hasattr(stage, "paletteRefs") else []
    if not refs:
        return
    from palette.store import FeatureStore, default_root
    try:
        root = default_root(stage.getStoreRoot())
    except LookupError:
        return                      # no store known: nothing to record in
    model = path.split("/stages/")[0] if "/stages/" in path else path
    store = FeatureStore(root)
    previous = store.registry.usage().get(model, [])
    store.record_usage(model, sorted(set(previous) | set(refs)))


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
