"""What the window draws over the camera view: HUD panels, steering bar, minimap, help overlay.

Everything is drawn with pygame onto the window surface, sized from the
window height so it reads at any `--size`. The minimap's background (the
track from above, `drivesim.render.topdown.TopDownMap`) is drawn once per
track; the trail since the last reset is added to it a segment per step,
coloured by who was driving, and the car is drawn on top every frame.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pygame

from drivesim.app.session import Mode, PlaySession
from drivesim.drivers.base import DriverKind
from drivesim.render.topdown import TopDownMap
from drivesim.sim.car import footprint
from drivesim.track.geometry import Track

WHITE = (240, 240, 240)
DIM = (170, 175, 185)
PANEL = (12, 14, 20, 165)
RED = (235, 60, 60)
DRIVER_COLORS = {DriverKind.HUMAN: (255, 170, 50), DriverKind.EXPERT: (80, 170, 255), DriverKind.POLICY: (190, 120, 255)}
"""Badge and trail colour of each driver."""
MODE_KIND = {Mode.HUMAN: DriverKind.HUMAN, Mode.AUTOPILOT: DriverKind.EXPERT, Mode.NETWORK: DriverKind.POLICY}
LABEL_COLOR = (60, 230, 230)
MESSAGE_SECONDS = 3.0
"""How long a notice stays up [s]."""

HELP = (
    ("Arrows / WASD", "steer, throttle, brake (takes the wheel)"),
    ("Gamepad", "left stick steers, triggers or stick drive"),
    ("P", "autopilot (expert) on / off"),
    ("N", "network drives / hand the wheel back (--model)"),
    ("R", "record on / off (HDF5 shards)"),
    ("Backspace", "reset to the start line"),
    ("T", "new random track"),
    ("L", "cycle randomization: none, light, full"),
    ("C", "cycle camera: center, left, right"),
    ("Space", "pause"),
    ("F12", "save a screenshot"),
    ("H", "show / hide this help"),
    ("Esc / Q", "quit (a recording is saved)"),
)
"""Key table of the help overlay (and of the README)."""


def recording_clock(frames: int, dt: float) -> str:
    """The simulated time `frames` steps of `dt` [s] take, as mm:ss.s (the recording's length, not wall time)."""
    minutes, tenths = divmod(round(frames * dt * 10), 600)
    return f"{minutes:02d}:{tenths / 10:04.1f}"


@dataclass
class WindowState:
    """What the window itself knows, for the HUD."""

    fps: float = 0.0
    """Measured window frames per second."""
    paused: bool = False
    camera: str = "center"
    """Camera shown."""
    help: bool = False
    """Help overlay shown."""
    joystick: str | None = None
    """Name of the gamepad in use."""


class Minimap:
    """The track from above with the trail and the car, in a square of `size` pixels.

    The trail is drawn onto a copy of the background a segment at a time as the car moves, so a frame
    costs the same however long the drive.
    """

    def __init__(self, track: Track, size: int) -> None:
        self.track = track
        self.size = size
        self.map = TopDownMap(track, (size, size), margin=8)
        self.background = pygame.image.frombuffer(self.map.background.tobytes(), (size, size), "RGB").convert()
        self.layer = self.background.copy()
        """The background with the trail drawn so far."""
        self._generation = -1
        self._drawn = 0

    def _update_trail(self, session: PlaySession) -> None:
        trail = session.trail
        if trail.generation != self._generation or len(trail.points) < self._drawn:
            self.layer = self.background.copy()
            self._generation, self._drawn = trail.generation, 0
        new = trail.points[max(self._drawn - 1, 0) :]
        if len(new) > 1:
            pixels = self.map.to_pixels(np.array([(x, y) for x, y, _ in new])).tolist()
            for i in range(1, len(new)):  # each segment in the colour of who drove to its end
                pygame.draw.line(self.layer, DRIVER_COLORS[DriverKind(new[i][2])], pixels[i - 1], pixels[i], 2)
        self._drawn = len(trail.points)

    def draw(self, target: pygame.Surface, topleft: tuple[int, int], session: PlaySession) -> None:
        self._update_trail(session)
        target.blit(self.layer, topleft)
        car, config = session.world.car, session.world.car_config
        scale = max(1.0, 9.0 / (config.length * self.map.pixels_per_metre))
        corners = (footprint(car, config) - [car.x, car.y]) * scale + [car.x, car.y]
        polygon = (self.map.to_pixels(corners) + topleft).tolist()
        pygame.draw.polygon(target, WHITE, polygon)
        pygame.draw.polygon(target, (20, 20, 20), polygon, 1)
        pygame.draw.rect(target, (230, 230, 230), (*topleft, self.size, self.size), 1)


class Hud:
    """Fonts, panels and the minimap of a window of `size` (width, height)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        width, height = size
        self.unit = height / 600
        """Scale of everything drawn: 1 at 600 px height."""
        self.big = pygame.font.Font(None, self.px(40))
        self.medium = pygame.font.Font(None, self.px(26))
        self.small = pygame.font.Font(None, self.px(20))
        self.map_size = int(min(width, height) * 0.32)
        self._minimap: Minimap | None = None

    def px(self, value: float) -> int:
        return max(1, int(round(value * self.unit)))

    def minimap(self, track: Track) -> Minimap:
        if self._minimap is None or self._minimap.track is not track:
            self._minimap = Minimap(track, self.map_size)
        return self._minimap

    # ------------------------------------------------------------------ pieces
    def _panel(self, target: pygame.Surface, rect: pygame.Rect) -> None:
        panel = pygame.Surface(rect.size, pygame.SRCALPHA)
        panel.fill(PANEL)
        target.blit(panel, rect.topleft)

    def _text(self, target: pygame.Surface, text: str, font: pygame.font.Font, color: tuple[int, int, int], pos: tuple[int, int], anchor: str = "topleft") -> pygame.Rect:
        image = font.render(text, True, color)
        rect = image.get_rect(**{anchor: pos})
        target.blit(image, rect)
        return rect

    def draw(self, target: pygame.Surface, session: PlaySession, state: WindowState) -> None:
        self._driver_panel(target, session)
        self._state_panel(target, session)
        self._steering_bar(target, session)
        self._status_panel(target, session, state)
        width = self.size[0]
        margin = self.px(10)
        corner = (width - self.map_size - margin, margin)
        self.minimap(session.track).draw(target, corner, session)
        track = session.track
        caption = f"{track.name or 'track'}  {track.length:.0f} m  {track.lanes} lane{'s' * (track.lanes > 1)}"
        image = self.small.render(caption, True, WHITE)
        strip = pygame.Rect(corner[0] + 1, corner[1] + self.map_size - image.get_height() - self.px(6), self.map_size - 2, image.get_height() + self.px(5))
        self._panel(target, strip)
        target.blit(image, (strip.x + self.px(5), strip.y + self.px(3)))
        if state.paused:
            self.banner(target, "PAUSED  (Space to go on)", WHITE)
        if session.message and time.monotonic() - session.message_time < MESSAGE_SECONDS:
            self._message(target, session.message)
        if state.help:
            self.draw_help(target)

    def _driver_panel(self, target: pygame.Surface, session: PlaySession) -> None:
        m = self.px(10)
        rect = pygame.Rect(m, m, self.px(250), self.px(74))
        self._panel(target, rect)
        kind = MODE_KIND[session.mode]
        if session.intervening:
            name, color = "HUMAN - TAKEOVER", DRIVER_COLORS[DriverKind.HUMAN]
        else:
            name, color = session.mode.value.upper(), DRIVER_COLORS[kind]
        pygame.draw.rect(target, color, (rect.x, rect.y, self.px(6), rect.height))
        self._text(target, name, self.medium, color, (rect.x + self.px(16), rect.y + self.px(9)))
        y = rect.y + self.px(42)
        if session.recording:
            assert session.recorder is not None
            pulse = 0.6 + 0.4 * abs(math.sin(time.monotonic() * math.pi))  # a slow pulse, never off
            pygame.draw.circle(target, tuple(int(c * pulse) for c in RED), (rect.x + self.px(23), y + self.px(8)), self.px(7))
            frames = session.recorder.frames
            text = f"REC {recording_clock(frames, session.world.dt)}  {frames} frames"
            self._text(target, text, self.small, RED, (rect.x + self.px(36), y))
        else:
            saved = f"  ({session.recorder.frames} saved)" if session.recorder is not None and session.recorder.frames else ""
            self._text(target, f"not recording{saved}", self.small, DIM, (rect.x + self.px(16), y))

    def _state_panel(self, target: pygame.Surface, session: PlaySession) -> None:
        m = self.px(10)
        height = self.px(112)
        rect = pygame.Rect(m, self.size[1] - height - m, self.px(210), height)
        self._panel(target, rect)
        world, road = session.world, session.world.road
        x = rect.x + self.px(12)
        speed = world.car.speed
        top = self._text(target, f"{speed * 3.6:3.0f}", self.big, WHITE, (x, rect.y + self.px(8)))
        self._text(target, f"km/h  {speed:4.1f} m/s", self.small, DIM, (top.right + self.px(6), top.bottom - self.px(3)), "bottomleft")
        length = session.track.length
        lap_share = road.s / length * 100
        rows = (
            (f"lap {road.laps + 1}   {lap_share:3.0f}%  of {length:.0f} m", WHITE),
            (f"offset {road.lateral_offset:+5.2f} m" + ("   OFF ROAD" if road.off_road else ""), RED if road.off_road else WHITE),
            (f"driven {max(road.progress, 0.0) / 1000:.2f} km" + (f"   takeovers {session.takeovers}" if session.has_network else ""), DIM),
        )
        y = top.bottom + self.px(6)
        for text, color in rows:
            self._text(target, text, self.small, color, (x, y))
            y += self.px(19)

    def _steering_bar(self, target: pygame.Surface, session: PlaySession) -> None:
        width, height = self.size
        m = self.px(10)
        # Centred in the gap between the bottom-left and bottom-right panels.
        gap_left, gap_right = m + self.px(210), width - m - self.px(150)
        bar_w, bar_h = min(self.px(300), gap_right - gap_left - self.px(60)), self.px(16)
        centre_x = (gap_left + gap_right) // 2
        y = height - self.px(46)
        rect = pygame.Rect(centre_x - bar_w // 2, y, bar_w, bar_h)
        self._panel(target, rect.inflate(self.px(44), self.px(40)).move(0, -self.px(8)))
        pygame.draw.rect(target, (60, 62, 70), rect)
        applied, label = session.last.applied.steering, session.last.label.steering
        # Steering is positive to the left: the bar grows to the left for a left turn.
        reach = int(round(-applied * bar_w / 2))
        fill = pygame.Rect(min(centre_x, centre_x + reach), y, abs(reach), bar_h)
        pygame.draw.rect(target, DRIVER_COLORS[session.last.kind], fill)
        lx = int(round(centre_x - label * bar_w / 2))
        pygame.draw.polygon(target, LABEL_COLOR, [(lx, y - self.px(2)), (lx - self.px(6), y - self.px(11)), (lx + self.px(6), y - self.px(11))])
        pygame.draw.line(target, LABEL_COLOR, (lx, y), (lx, y + bar_h - 1), self.px(2))
        pygame.draw.line(target, WHITE, (centre_x, y - self.px(3)), (centre_x, y + bar_h + self.px(2)), 1)
        pygame.draw.rect(target, (200, 200, 200), rect, 1)
        self._text(target, f"steering {applied:+.2f}", self.small, WHITE, (rect.left, rect.bottom + self.px(4)))
        self._text(target, f"expert label {label:+.2f}", self.small, LABEL_COLOR, (rect.right, rect.bottom + self.px(4)), "topright")
        self._text(target, "L", self.small, DIM, (rect.left - self.px(6), y + bar_h // 2), "midright")
        self._text(target, "R", self.small, DIM, (rect.right + self.px(6), y + bar_h // 2), "midleft")

    def _status_panel(self, target: pygame.Surface, session: PlaySession, state: WindowState) -> None:
        width, height = self.size
        m = self.px(10)
        panel_h = self.px(112)
        rect = pygame.Rect(width - m - self.px(150), height - panel_h - m, self.px(150), panel_h)
        self._panel(target, rect)
        x, y = rect.x + self.px(12), rect.y + self.px(10)
        top = self._text(target, f"{state.fps:3.0f}", self.medium, WHITE, (x, y))
        self._text(target, "frames/s", self.small, DIM, (top.right + self.px(6), top.bottom - self.px(2)), "bottomleft")
        rows = [f"look  {session.level}", f"camera  {state.camera}"]
        rows.append(f"pad  {state.joystick[:12]}" if state.joystick else ("PAUSED" if state.paused else "H  help"))
        y = top.bottom + self.px(6)
        for text in rows:
            self._text(target, text, self.small, WHITE, (x, y))
            y += self.px(19)

    def banner(self, target: pygame.Surface, text: str, color: tuple[int, int, int]) -> None:
        image = self.big.render(text, True, color)
        rect = image.get_rect(center=(self.size[0] // 2, self.size[1] // 2))
        self._panel(target, rect.inflate(self.px(30), self.px(20)))
        target.blit(image, rect)

    def _message(self, target: pygame.Surface, text: str) -> None:
        image = self.small.render(text, True, WHITE)
        rect = image.get_rect(midtop=(self.size[0] // 2 - self.map_size // 2, self.px(14)))
        rect.left = max(rect.left, self.px(270))
        self._panel(target, rect.inflate(self.px(14), self.px(8)))
        target.blit(image, rect)

    def draw_help(self, target: pygame.Surface) -> None:
        width, height = self.size
        row = self.px(24)
        box = pygame.Rect(0, 0, min(width - self.px(20), self.px(560)), row * (len(HELP) + 2) + self.px(10))
        box.center = (width // 2, height // 2)
        panel = pygame.Surface(box.size, pygame.SRCALPHA)
        panel.fill((8, 10, 16, 215))
        target.blit(panel, box.topleft)
        pygame.draw.rect(target, (200, 200, 200), box, 1)
        self._text(target, "drivesim play - keys", self.medium, WHITE, (box.x + self.px(16), box.y + self.px(10)))
        y = box.y + self.px(12) + row + self.px(6)
        for key, what in HELP:
            self._text(target, key, self.small, LABEL_COLOR, (box.x + self.px(16), y))
            self._text(target, what, self.small, WHITE, (box.x + self.px(150), y))
            y += row
