from tests.data.scene import scene

__all__ = ["scene"]
