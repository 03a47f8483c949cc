"""rayfarm: a self-hosted render farm speaking the Renderbus task API."""

__version__ = "0.1.0"
