"""The interactive window (`drivesim play`): drive, watch the autopilot or a network, take the wheel, record.

`PlaySession` (drivesim.app.session) is the simulation side and imports no
pygame; `App` (drivesim.app.window) is the pygame window around it. This
package and nothing else in drivesim imports pygame.
"""

from drivesim.app.session import Mode, PlayConfig, PlaySession

__all__ = ["App", "Mode", "PlayConfig", "PlaySession", "RunStats"]


def __getattr__(name: str):
    if name in ("App", "RunStats"):  # pygame is imported only when the window is wanted
        from drivesim.app import window

        return getattr(window, name)
    raise AttributeError(f"module 'drivesim.app' has no attribute {name!r}")
