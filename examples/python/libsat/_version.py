"""The version of the package; it equals the libsat C library version it is written for."""
__version__ = "0.1.0"
