"""The scoring runtime that runs inside each replica, in the image's environment.

It imports nothing from modelyard above `domain/`, and nothing outside the standard
library but uvicorn and prometheus_client (model libraries only inside the built-in
drivers, when they load a model): the environment holds only the image's locked
requirements, this package and its own server dependencies.

Drivers may import `model_path` from here to find a registered model's folder.
"""

from modelyard.runtime.models import model_path

__all__ = ["model_path"]
