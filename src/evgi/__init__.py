"""evgi: the open platform for EV charging and grid integration."""

__version__ = "0.1.0"
