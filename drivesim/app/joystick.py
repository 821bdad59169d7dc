"""Gamepads and joysticks for the window, through pygame.

A device SDL knows as a game controller (Xbox, PlayStation, Switch pads and
most others) is read through SDL's game-controller mapping, so the axes mean
the same on every pad and platform: left stick X steers, the right trigger
accelerates, the left trigger brakes (or right stick Y, up = throttle).
Any other joystick: axis 0 steers, axis 1 (pushed forward) accelerates and
(pulled back) brakes. Only the first device connected is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pygame

try:
    from pygame._sdl2 import controller as _controller
except ImportError:  # an older or newer pygame without the game-controller module: plain joysticks only
    _controller = None

AXIS_MAX = 32767.0
"""Full deflection of a game-controller axis."""


def controller_reading(get_axis: Callable[[int], float]) -> tuple[float, float]:
    """(steering, throttle) from a game controller's `get_axis` (SDL's mapped axes, -32768..32767; triggers 0..32767)."""
    steering = -get_axis(pygame.CONTROLLER_AXIS_LEFTX) / AXIS_MAX  # stick left = steer left = positive
    triggers = (get_axis(pygame.CONTROLLER_AXIS_TRIGGERRIGHT) - get_axis(pygame.CONTROLLER_AXIS_TRIGGERLEFT)) / AXIS_MAX
    stick = -get_axis(pygame.CONTROLLER_AXIS_RIGHTY) / AXIS_MAX  # up is negative in SDL
    throttle = triggers if abs(triggers) >= abs(stick) else stick
    return _clip(steering), _clip(throttle)


def joystick_reading(axes: list[float]) -> tuple[float, float]:
    """(steering, throttle) from a plain joystick's axes (each -1..1, up and left negative)."""
    steering = -axes[0] if axes else 0.0
    throttle = -axes[1] if len(axes) > 1 else 0.0
    return _clip(steering), _clip(throttle)


def _clip(value: float) -> float:
    return min(1.0, max(-1.0, float(value)))


class Gamepads:
    """The connected devices; `read()` gives the first one's (steering, throttle), (0, 0) without one."""

    def __init__(self) -> None:
        if _controller is not None:
            try:
                _controller.init()
            except pygame.error:
                pass
        self._devices: dict[int, tuple[str, Any]] = {}
        """instance id -> ("controller" or "joystick", device)."""

    @property
    def name(self) -> str | None:
        """Name of the device in use."""
        if not self._devices:
            return None
        kind, device = next(iter(self._devices.values()))
        return str(device.name) if kind == "controller" else str(device.get_name())

    def handle(self, event: pygame.event.Event) -> None:
        """A JOYDEVICEADDED or JOYDEVICEREMOVED event."""
        if event.type == pygame.JOYDEVICEADDED:
            index = event.device_index
            joystick = pygame.joystick.Joystick(index)
            if _controller is not None and _controller.get_init() and _controller.is_controller(index):
                self._devices[joystick.get_instance_id()] = ("controller", _controller.Controller(index))
            else:
                self._devices[joystick.get_instance_id()] = ("joystick", joystick)
        elif event.type == pygame.JOYDEVICEREMOVED:
            self._devices.pop(event.instance_id, None)

    def read(self) -> tuple[float, float]:
        if not self._devices:
            return 0.0, 0.0
        kind, device = next(iter(self._devices.values()))
        try:
            if kind == "controller":
                return controller_reading(device.get_axis)
            return joystick_reading([device.get_axis(i) for i in range(device.get_numaxes())])
        except pygame.error:  # unplugged between the event and now
            return 0.0, 0.0

    def close(self) -> None:
        self._devices.clear()
