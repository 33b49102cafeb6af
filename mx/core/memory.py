"""(being written) memory API."""
__all__ = []
