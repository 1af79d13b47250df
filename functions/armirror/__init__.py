"""armirror: mirror third-party container images into Artifact Registry."""

__version__ = "0.1.0"
