"""`App`: the pygame window of `drivesim play`.

Each window frame: read events (keys, gamepad, close), advance the
simulation, draw the front camera at the window's size, the HUD and the
minimap, flip, and wait for the frame-rate cap.

Timing. The simulation always steps `CarConfig.dt` (20 Hz). In real time
(`steps_per_frame` 0) the window runs at up to `max_fps` and takes one
simulation step per `dt` of wall time (an accumulator); the view is drawn
between the last two steps' poses, so motion is smooth at 60 frames/s while
physics, labels and recordings stay at 20 Hz. With `steps_per_frame` N the
window takes exactly N steps per frame whatever the wall time: runs are
then deterministic (tests, benchmarks).

The session is closed however the window ends (close button, Esc, Ctrl-C,
SIGTERM, an exception): an open recording stretch is completed into a shard
and listed in the manifest, or its temporary file is deleted. Ctrl-C and
SIGTERM end the run at a frame boundary, never inside a shard write.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

from drivesim.app.hud import Hud, WindowState  # noqa: E402
from drivesim.app.joystick import Gamepads  # noqa: E402
from drivesim.app.session import VIEW_CAMERAS, PlayConfig, PlaySession  # noqa: E402
from drivesim.errors import DrivesimError  # noqa: E402
from drivesim.processes import TERMINATION_SIGNALS  # noqa: E402

MAX_CATCH_UP = 5
"""Most simulation steps in one window frame in real time; a slower machine runs slower than real time instead of freezing."""
TAKEOVER_STICK = 0.3
"""Stick or trigger deflection that takes the wheel [-]."""

INVISIBLE_DRIVERS = ("offscreen", "dummy")
"""SDL video drivers that draw nowhere: used only when asked for by SDL_VIDEODRIVER (tests, benchmarks)."""

LEFT_KEYS = (pygame.K_LEFT, pygame.K_a)
RIGHT_KEYS = (pygame.K_RIGHT, pygame.K_d)
THROTTLE_KEYS = (pygame.K_UP, pygame.K_w)
BRAKE_KEYS = (pygame.K_DOWN, pygame.K_s)
DRIVING_KEYS = LEFT_KEYS + RIGHT_KEYS + THROTTLE_KEYS + BRAKE_KEYS


class WindowError(DrivesimError):
    """The window cannot be opened."""


@dataclass
class RunStats:
    """What a run of the window did."""

    frames: int
    """Window frames drawn."""
    steps: int
    """Simulation steps taken."""
    timed_frames: int
    """Frames after the first, which the rates are measured on."""
    seconds: float
    """Wall time of the timed frames [s]."""
    work_seconds: float
    """Time the timed frames took, without waiting for the frame-rate cap [s]."""

    @property
    def fps(self) -> float:
        """Window frames per second [frames/s]."""
        return self.timed_frames / self.seconds if self.timed_frames else 0.0

    @property
    def uncapped_fps(self) -> float:
        """Frames per second the machine could draw without the cap [frames/s]."""
        return self.timed_frames / self.work_seconds if self.timed_frames else 0.0


class App:
    """The interactive window around a `PlaySession`."""

    def __init__(self, config: PlayConfig, session: PlaySession | None = None, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.log = log or (lambda message: None)
        self.running = True
        self._signal: int | None = None
        # Ctrl-C, SIGTERM and SIGHUP only ask the loop to stop (see `run`), from now until `close`; installed before
        # SDL starts, so SDL does not turn SIGTERM into a plain window close.
        self._handlers: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, *TERMINATION_SIGNALS):
                self._handlers[signum] = signal.signal(signum, self._stop_on_signal)
        try:
            # The session first: a bad model or recording folder fails before a window opens.
            self.session = session if session is not None else PlaySession(config, log=self.log)
        except BaseException:
            self._restore_signals()
            raise
        try:
            if sys.platform.startswith("linux") and not any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")):
                raise pygame.error("no display: neither DISPLAY nor WAYLAND_DISPLAY is set")  # before SDL prints its own complaints
            pygame.display.init()
            if pygame.display.get_driver() in INVISIBLE_DRIVERS and not os.environ.get("SDL_VIDEODRIVER"):
                # SDL falls back to drawing off screen when there is no display: a window nobody can see.
                raise pygame.error("no display")
            pygame.font.init()
            pygame.joystick.init()
            self.screen = pygame.display.set_mode(config.size)
        except pygame.error as error:
            self._restore_signals()
            pygame.display.quit()
            raise WindowError(f"cannot open a window ({error}); without a display run under xvfb-run, or set SDL_VIDEODRIVER=dummy") from None
        pygame.display.set_caption("drivesim play")
        pygame.key.set_repeat()  # held keys are tracked as held, not repeated
        self.hud = Hud(config.size)
        self.gamepads = Gamepads()
        self.state = WindowState()
        self._held: set[int] = set()
        """Driving keys held down now."""
        self.frames = 0
        self.clock = pygame.time.Clock()
        self._accumulator = 0.0
        self._alpha = 1.0
        self._last_time: float | None = None
        self._frame_times: deque[float] = deque(maxlen=60)
        self._work = 0.0
        self._camera_key: tuple[object, tuple[int, int]] | None = None
        self._camera = None

    # ------------------------------------------------------------------ events
    def handle_event(self, event: pygame.event.Event) -> None:
        session = self.session
        if event.type == pygame.QUIT:
            self.running = False
        elif event.type == pygame.KEYDOWN:
            key = event.key
            if key in DRIVING_KEYS:
                self._set_key(key, True)
                session.take_wheel()
            elif key in (pygame.K_ESCAPE, pygame.K_q):
                self.running = False
            elif key == pygame.K_p:
                session.toggle_autopilot()
            elif key == pygame.K_n:
                session.toggle_network()
            elif key == pygame.K_r:
                session.toggle_recording()
            elif key == pygame.K_BACKSPACE:
                session.reset()
            elif key == pygame.K_t:
                self._busy("building a new track...")
                session.new_track()
                self._last_time = None  # the track took wall time the simulation must not catch up on
            elif key == pygame.K_l:
                session.cycle_randomization()
            elif key == pygame.K_c:
                self.state.camera = VIEW_CAMERAS[(VIEW_CAMERAS.index(self.state.camera) + 1) % len(VIEW_CAMERAS)]
                session.notify(f"camera {self.state.camera}")
            elif key == pygame.K_SPACE:
                self.state.paused = not self.state.paused
            elif key in (pygame.K_h, pygame.K_F1):
                self.state.help = not self.state.help
            elif key == pygame.K_F12:
                try:
                    path = self.screenshot(Path(time.strftime("drivesim-%Y%m%d-%H%M%S.png")))
                except (pygame.error, OSError) as error:  # an unwritable folder costs the picture, not the session
                    session.notify(f"screenshot not saved: {error}")
                else:
                    session.notify(f"saved {path}")
        elif event.type == pygame.KEYUP:
            if event.key in DRIVING_KEYS:
                self._set_key(event.key, False)
        elif event.type == pygame.WINDOWFOCUSLOST:
            self._held.clear()
            session.input.clear()  # keys released while the window cannot see them must not stay held
        elif event.type in (pygame.JOYDEVICEADDED, pygame.JOYDEVICEREMOVED):
            self.gamepads.handle(event)
            self.state.joystick = self.gamepads.name

    def _set_key(self, key: int, down: bool) -> None:
        # Two keys do each job (arrow and WASD): releasing one must not release the other while it is held.
        if down:
            self._held.add(key)
        else:
            self._held.discard(key)
        state = self.session.input
        state.left = not self._held.isdisjoint(LEFT_KEYS)
        state.right = not self._held.isdisjoint(RIGHT_KEYS)
        state.accelerate = not self._held.isdisjoint(THROTTLE_KEYS)
        state.brake = not self._held.isdisjoint(BRAKE_KEYS)

    def _read_gamepad(self) -> None:
        reading = self.gamepads.read()
        state = self.session.input
        state.stick_steering, state.stick_throttle = reading
        if max(abs(reading[0]), abs(reading[1])) > TAKEOVER_STICK:
            self.session.take_wheel()

    def _busy(self, text: str) -> None:
        """Show `text` while something slow happens."""
        self.hud.banner(self.screen, text, (240, 240, 240))
        pygame.display.flip()

    # ------------------------------------------------------------------ frames
    def frame(self) -> None:
        """One window frame: events, simulation, drawing, frame-rate cap."""
        start = time.perf_counter()
        elapsed = 0.0 if self._last_time is None else start - self._last_time
        self._last_time = start
        for event in pygame.event.get():
            self.handle_event(event)
            if not self.running:
                return
        self._read_gamepad()
        self._advance(elapsed)
        self.draw()
        pygame.display.flip()
        self.frames += 1
        self._work += time.perf_counter() - start
        self.clock.tick(self.config.max_fps)
        self._frame_times.append(time.perf_counter())
        if len(self._frame_times) > 1:
            self.state.fps = (len(self._frame_times) - 1) / max(self._frame_times[-1] - self._frame_times[0], 1e-9)

    def _advance(self, elapsed: float) -> None:
        if self.state.paused:
            return
        session = self.session
        if self.config.steps_per_frame > 0:
            for _ in range(self.config.steps_per_frame):
                session.step()
            self._alpha = 1.0
            return
        dt = session.world.dt
        self._accumulator += elapsed
        steps = 0
        while self._accumulator >= dt and steps < MAX_CATCH_UP:
            session.step()
            self._accumulator -= dt
            steps += 1
        if steps == MAX_CATCH_UP:
            self._accumulator = min(self._accumulator, dt)
        self._alpha = self._accumulator / dt

    def draw(self) -> None:
        session = self.session
        key = (session.view.appearance, self.config.size)
        if key != self._camera_key:
            self._camera, self._camera_key = session.display_camera(self.config.size), key
        image = session.render_view(self._camera, self.state.camera, self._alpha)
        width, height = self.config.size
        self.screen.blit(pygame.image.frombuffer(image, (width, height), "RGB"), (0, 0))
        self.hud.draw(self.screen, session, self.state)

    def screenshot(self, path: Path) -> Path:
        """Save the window as an image (PNG by extension)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.screen, str(path))
        return path

    # ------------------------------------------------------------------ the run
    def run(self, max_frames: int | None = None, screenshot: Path | None = None) -> RunStats:
        """Run until the window is closed (or `max_frames` frames); save `screenshot` at the end if given.

        The session is closed however this ends. Ctrl-C (SIGINT) and SIGTERM stop the loop at the end of
        the current frame, the recording is completed, and then KeyboardInterrupt or SystemExit(143) is
        raised. Signals never raise in the middle of a frame: an exception inside h5py can leave its lock
        held and the process hung. After any other exception the recording is still completed if it can
        be, and the exception is raised again. The rates leave out the first frame, which builds caches.
        """
        steps_before = self.session.steps
        first: tuple[int, float, float] | None = None
        try:
            while self.running and (max_frames is None or self.frames < max_frames):
                self.frame()
                if first is None:
                    first = (self.frames, time.perf_counter(), self._work)
            if screenshot is not None:
                self.screenshot(screenshot)
        except BaseException:
            try:
                self.session.close()
            except Exception as error:  # keep the original exception; this one only says what was lost
                self.log(f"the open recording stretch could not be completed and was deleted: {error}")
            raise
        else:
            self.session.close()
        finally:
            self.close()
        if self._signal == signal.SIGINT:
            raise KeyboardInterrupt
        if self._signal is not None:
            raise SystemExit(128 + self._signal)
        frames0, time0, work0 = first if first is not None else (self.frames, time.perf_counter(), self._work)
        return RunStats(self.frames, self.session.steps - steps_before, self.frames - frames0, time.perf_counter() - time0, self._work - work0)

    def _stop_on_signal(self, signum: int, frame: object) -> None:
        if self._signal is None:  # the first says how the run ends (timeout signals the process, then its group)
            self._signal = signum
        self.running = False

    def close(self) -> None:
        """Close the window (the session is closed by `run`, or by whoever drives frames by hand)."""
        self.gamepads.close()
        pygame.display.quit()
        self._restore_signals()

    def _restore_signals(self) -> None:
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)  # None: a handler set outside Python
        self._handlers = {}

