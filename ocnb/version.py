"""ocnb's version, a leaf: the package face and the client's User-Agent both read it."""

__version__ = "0.1.0"
