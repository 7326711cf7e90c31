"""modelyard: register models and serve them behind the Azure ML Model Management API."""

__version__ = "0.1.0"
