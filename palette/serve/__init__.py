"""``palette serve``: saved pipelines over HTTP, without a JVM.

    palette serve --model eta=/models/eta --online-store sqlite:////data/online.db --workers 2
    python -m palette.serve --config serve.toml

Protocols clients already speak: KServe v1 (``POST /v1/models/NAME:predict`` with
``{"instances": [...]}``) and MLflow's scoring server (``POST /invocations``), answering
``{"predictions": [...]}``; ``?features=true`` adds every looked-up and derived column.
``/healthz``, ``/readyz``, ``/v1/models``, ``/metrics`` (Prometheus). See
docs/serving.md, "Running the service".
"""
from .app import create_app
from .config import ConfigError, ModelConfig, ServeConfig
from .models import BadRequest, ModelLoadError, ModelSet, ServedModel
from .supervisor import main, serve

__all__ = ["main", "serve", "create_app", "ServeConfig", "ModelConfig", "ConfigError", "ModelSet", "ServedModel",
           "ModelLoadError", "BadRequest"]
