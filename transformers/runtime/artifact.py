"""Reading a saved stage or PipelineModel directory: Spark's own layout, JSON and parquet.

``metadata/`` holds one JSON line (class, uid, paramMap, defaultParamMap, sparkVersion);
palette's stages add ``paletteFormatVersion`` and, when they read the feature store,
``paletteDefinitions`` (the entities and feature groups they read). A PipelineModel keeps
its stages in ``stages/NN_uid/``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from palette.dsl import parse
from palette.errors import ArtifactError
from palette.refs import parse_ref

# The artifact format palette's stages write; a newer one needs a newer palette to read.
FORMAT_VERSION = 1
PIPELINE_MODELS = frozenset({"pyspark.ml.pipeline.PipelineModel", "org.apache.spark.ml.PipelineModel"})


def read_metadata(path: str | os.PathLike) -> dict:
    """The one JSON line in ``path/metadata`` (Spark writes it as a text part file)."""
    meta_dir = Path(path) / "metadata"
    if not meta_dir.is_dir():
        raise ArtifactError(f"{path} is not a saved Spark ML stage: {meta_dir} does not exist")
    for part in sorted(meta_dir.glob("part-*")):
        try:
            lines = part.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ArtifactError(f"{part}: the metadata of the stage saved at {path} cannot be read "
                                f"({type(e).__name__}: {e}); save the model again") from None
        for line in lines:
            if line.strip():
                try:
                    metadata = json.loads(line)
                except ValueError as e:
                    raise ArtifactError(f"{part}: the metadata of the stage saved at {path} is not valid JSON "
                                        f"({e}); the directory is damaged: save the model again") from None
                if not isinstance(metadata, dict) or not isinstance(metadata.get("class"), str):
                    raise ArtifactError(f"{part}: the metadata of the stage saved at {path} is not a Spark ML "
                                        "stage's (a JSON object with a 'class'); save the model again")
                return metadata
    raise ArtifactError(f"{meta_dir} holds no metadata line")


def params_of(metadata: dict) -> dict:
    """The stage's params: defaults overridden by the ones set."""
    return {**metadata.get("defaultParamMap", {}), **metadata.get("paramMap", {})}


def check_format(metadata: dict, path: str | os.PathLike) -> None:
    """A palette stage's ``paletteFormatVersion`` must be one this palette reads."""
    if not str(metadata.get("class", "")).startswith("palette."):
        return
    version = metadata.get("paletteFormatVersion")
    if not isinstance(version, int) or version < 1:
        raise ArtifactError(f"{path}: the palette stage {metadata.get('uid', '?')} has no valid "
                            f"paletteFormatVersion ({version!r}); it was not written by palette's save()")
    if version > FORMAT_VERSION:
        raise ArtifactError(f"{path} was saved with palette format version {version}; this palette reads "
                            f"versions up to {FORMAT_VERSION}: upgrade palette to load it")


def stage_dirs(path: Path, metadata: dict) -> list[Path]:
    """A PipelineModel's stage directories, in pipeline order."""
    uids = metadata.get("paramMap", {}).get("stageUids")
    if not isinstance(uids, list):
        raise ArtifactError(f"{path}/metadata: the PipelineModel lists no stageUids; save the model again")
    stages_dir = path / "stages"
    found = {d.name.split("_", 1)[1]: d for d in stages_dir.iterdir() if d.is_dir() and "_" in d.name} \
        if stages_dir.is_dir() else {}
    missing = [u for u in uids if u not in found]
    if missing:
        raise ArtifactError(f"{stages_dir} lacks the saved stages {', '.join(missing)}")
    return [found[u] for u in uids]


def stage_metadata(path: str | os.PathLike) -> list[tuple[Path, dict]]:
    """(directory, metadata) of every stage, nested PipelineModels flattened, in order."""
    path = Path(path)
    metadata = read_metadata(path)
    if metadata.get("class") in PIPELINE_MODELS:
        return [s for d in stage_dirs(path, metadata) for s in stage_metadata(d)]
    return [(path, metadata)]


def palette_refs(path: str | os.PathLike) -> list[str]:
    """The palette feature refs a saved model reads (from its stages' definitions)."""
    refs = set()
    for _, metadata in stage_metadata(path):
        params = params_of(metadata)
        refs.update(params.get("features", {}).values() if metadata["class"].endswith("PaletteTransformer") else ())
        for text in (params.get("lambdas") or {}).values():
            refs.update(r.ref for r in parse(text).reads() if r.parsed.kind == "palette")
    return sorted(str(parse_ref(r)) for r in refs)


__all__ = ["FORMAT_VERSION", "PIPELINE_MODELS", "read_metadata", "params_of", "check_format", "stage_dirs",
           "stage_metadata", "palette_refs"]
