"""drivesim: labeled training data for end-to-end driving networks, and closed-loop tests of them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drivesim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
