"""driftloop: code, data and model as one unit — compile, run, monitor and retrain ML pipelines."""

__all__ = ["__version__"]

__version__ = "0.1.0"
