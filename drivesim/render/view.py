"""`render_view`: one camera frame, the perspective view of the ground plane plus sky and billboards.

Per frame the ground costs one perspective warp of the road field and one
per detail mip band (OpenCV, `WARP_INVERSE_MAP`: each output pixel looks up
its ground point through the camera's homography), a lookup of the road
colour table, a few multiplies and the haze blend; the sky is one remap of a
panorama. Everything that depends only on the camera and the episode (which
mip level each image row uses, the haze per row, the sky's lookup map) is
computed once in `CameraSetup`.

Distance filtering: the road table is indexed by each pixel's footprint
across the road, measured from the warped distance field's per-pixel change,
so a pixel sees the average of the strip of road it covers, however the road
is oriented in the image; dashes are filtered by each row's footprint along
the road, and the detail texture by a mip level chosen per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from drivesim.config import CameraConfig
from drivesim.render.billboards import draw_billboards
from drivesim.render.camera import CameraPose, focal_length, image_to_ground
from drivesim.render.look import FOOTPRINT_UNIT, Look, get_look
from drivesim.render.randomization import Appearance
from drivesim.render.scene import VARIATION_LEVELS, Scene
from drivesim.render.sky import sky_panorama

FAR_GROUND = 8.0
"""Ground is drawn out to this many haze distances, beyond it only haze-coloured panorama [-]."""
BLUR_MIN = 0.35
"""Lens blur below this sigma moves less than 2% of a pixel's light to its neighbours: skipped [px]."""
SMALL_IMAGE = 320
"""Images up to this wide use every other detail mip level (fewer warps, slightly softer texture) [px]."""
MAX_SETUPS = 16
"""Camera setups cached per look."""
_WARP = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


@dataclass
class CameraSetup:
    """Everything about one camera (image size, fov, height, pitch) in one look that no frame changes."""

    width: int
    height: int
    ground_top: int
    """First image row drawn as ground; rows above come from the sky panorama."""
    bands: list[tuple[int, int, int]]
    """(first row, end row, detail mip level or -1 for none), in ground-row coordinates."""
    dash_table: np.ndarray | None
    """Flattened (ground rows, max dash distance + 1) table: dash coverage step * VARIATION_LEVELS."""
    dash_offset: np.ndarray | None
    """(ground rows, W) start of each row in `dash_table`: uint16 where the table is small enough, else int32."""
    haze_keep: np.ndarray
    """(ground rows, W) uint8: 255 * fraction of the ground colour haze lets through."""
    haze_add: np.ndarray
    """(ground rows, W, 3) uint8: haze colour times the fraction it covers."""
    panorama: np.ndarray
    """(rows, columns, 3) uint8 sky, hills and tree line over azimuth, wrapped past 2*pi."""
    sky_map: np.ndarray
    """(ground_top, W, 2) int16 panorama (column, row) of each sky pixel for yaw = -azimuth_min."""
    azimuth_min: float
    """Smallest azimuth of any sky pixel relative to the viewing direction [rad]."""
    columns_per_radian: float
    """Panorama horizontal resolution [columns/rad]."""
    columns_per_turn: int
    """Panorama columns in a full turn."""
    noise: tuple[np.ndarray, np.ndarray] | None
    """(positive, negative) uint8 sensor-noise pools of (2H, 2W, 3), or None."""
    blur: np.ndarray | None
    """Separable Gaussian lens-blur kernel, or None."""
    ground_to_field: np.ndarray
    """3x3 map from ground (x, y, 1) [m] to road-field texel coordinates."""
    detail_first: np.ndarray | None
    """(bands with texture,) first ground row of each; None when no band has texture."""
    detail_scale: np.ndarray | None
    """(bands with texture, 3, 3) ground-to-texel scale of each band's mip level (offsets set per frame)."""
    detail_back: np.ndarray | None
    """(bands with texture,) how many tiles each band's tiled texture reaches behind the camera."""
    detail_period: float
    """Detail texture period [m]."""
    detail_shift: np.ndarray | None = None
    """(bands with texture, 3, 3) shift of each band's first row to the image row it stands for."""
    detail_anchor: tuple = ((None, None), None)
    """((tile x, tile y), ground-to-texel maps) for the detail tile the camera was last in: rebuilt on change."""


def camera_setup(look: Look, camera: CameraConfig, pose: CameraPose) -> CameraSetup:
    """The cached setup of `camera` at `pose`'s height and pitch in `look`."""
    key = (camera.width, camera.height, camera.fov, pose.z, pose.pitch)
    setup = look.cameras.get(key)
    if setup is None:
        if len(look.cameras) >= MAX_SETUPS:
            look.cameras.pop(next(iter(look.cameras)))
        setup = look.cameras[key] = _build_setup(look, camera, pose)
    return setup


def _build_setup(look: Look, camera: CameraConfig, pose: CameraPose) -> CameraSetup:
    appearance = look.appearance
    width, height = camera.width, camera.height
    f = focal_length(camera)
    cy = (height - 1) / 2
    rows = np.arange(height, dtype=np.float64)
    below = pose.pitch + np.arctan((rows - cy) / f)  # angle of each row's centre ray below the horizontal
    with np.errstate(divide="ignore"):
        distance = np.where(below > 1e-9, pose.z / np.tan(np.maximum(below, 1e-9)), np.inf)
    far = FAR_GROUND * appearance.haze_distance
    ground_top = int(np.argmax(distance <= far)) if np.any(distance <= far) else height
    z = distance[ground_top:]
    off_axis = np.cos(np.arctan((rows[ground_top:] - cy) / f))
    sin_below = np.sin(np.maximum(below[ground_top:], 1e-9))
    lateral = pose.z / sin_below * off_axis / f  # ground metres per pixel across the view
    depth = pose.z / sin_below**2 * off_axis**2 / f  # ground metres per pixel along the view

    # Detail mip level per row from the geometric-mean footprint; rows past the coarsest level get none.
    base = look.detail_mips[0][1]
    level = np.floor(np.log2(np.maximum(np.sqrt(lateral * depth) / base, 1e-9)) + 0.5).astype(int)
    level = np.where(level < 0, 0, level)
    level = np.where(level >= len(look.detail_mips), -1, level)
    if width <= SMALL_IMAGE:
        # Small images: odd levels only (round up, never sharper than the footprint), so two
        # texture warps cover the ground instead of four. Large images keep every level.
        level = np.where(level >= 0, np.minimum(level | 1, len(look.detail_mips) - 1), level)
    if not look.filtered:
        level = np.zeros_like(level)
    bands: list[tuple[int, int, int]] = []
    for r, lvl in enumerate(level.tolist()):
        if bands and bands[-1][2] == lvl:
            bands[-1] = (bands[-1][0], r + 1, lvl)
        else:
            bands.append((r, r + 1, lvl))

    dash_table = dash_offset = None
    if look.dash_steps > 1:
        dash_table, dash_offset = _dash_table(look, depth * 100 if look.filtered else np.ones_like(depth), width)

    keep = np.exp(-z / appearance.haze_distance)[:, None, None] * np.ones((1, width, 1))
    haze_keep = np.clip(255 * keep[..., 0] + 0.5, 0, 255).astype(np.uint8)
    haze_add = np.clip((1 - keep) * look.haze_rgb + 0.5, 0, 255).astype(np.uint8)

    panorama, sky_map, azimuth_min, per_radian, turn = sky_panorama(look, camera, pose, ground_top)

    noise = None
    if appearance.noise_std > 0:
        gen = np.random.default_rng([appearance.seed, width, height])
        values = gen.normal(0.0, appearance.noise_std, (2 * height, 2 * width, 3))
        noise = (np.clip(np.rint(values), 0, 255).astype(np.uint8), np.clip(np.rint(-values), 0, 255).astype(np.uint8))
    blur = None
    if appearance.blur_sigma >= BLUR_MIN:
        # A separable 3-tap kernel (5 beyond sigma 0.8) is all a fraction-of-a-pixel lens blur needs.
        size = 3 if appearance.blur_sigma <= 0.8 else 5
        blur = cv2.getGaussianKernel(size, appearance.blur_sigma).astype(np.float32)

    scene = look.scene
    res = scene.field_resolution
    ground_to_field = np.array([[1 / res, 0, -scene.origin[0] / res], [0, 1 / res, -scene.origin[1] / res], [0, 0, 1]])
    textured = [(first, lvl) for first, _, lvl in bands if lvl >= 0]
    detail_first = detail_scale = detail_back = None
    _, texel0, tile0 = look.detail_mips[0]
    if textured:
        detail_first = np.array([first for first, _ in textured], np.float64)
        detail_scale = np.zeros((len(textured), 3, 3))
        texels = np.array([look.detail_mips[lvl][1] for _, lvl in textured])
        detail_scale[:, 0, 0] = detail_scale[:, 1, 1] = 1 / texels
        detail_scale[:, 2, 2] = 1.0
        detail_back = np.array([(look.detail_mips[lvl][0].shape[0] // look.detail_mips[lvl][2]) // 2 for _, lvl in textured])
    detail_shift = None
    if detail_first is not None:
        detail_shift = np.repeat(np.eye(3)[None], len(detail_first), axis=0)
        detail_shift[:, 1, 2] = detail_first
    return CameraSetup(
        width, height, ground_top, bands, dash_table, dash_offset, haze_keep, haze_add,
        panorama, sky_map, azimuth_min, per_radian, turn, noise, blur,
        ground_to_field, detail_first, detail_scale, detail_back, tile0 * texel0, detail_shift,
    )


def _dash_table(look: Look, footprint_cm: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Coverage of the dash pattern, box-filtered over each row's footprint along the road."""
    period = look.scene.dash_period * 100
    dash = look.appearance.dash_length * 100
    g_max = int(math.ceil(period / 2)) + 2
    # One period of the pattern at 1 cm, dash centred on 0, and its running integral.
    t = np.arange(int(math.ceil(period)) * 3)
    offset = t - int(math.ceil(period))
    pulse = (np.abs((offset + period / 2) % period - period / 2) < dash / 2).astype(np.float64)
    integral = np.concatenate([[0.0], np.cumsum(pulse)])
    g = np.arange(g_max + 1, dtype=np.float64)
    centre = g + int(math.ceil(period)) + 0.5
    tables = []
    for box in np.minimum(np.maximum(footprint_cm, 1.0), period):
        lo, hi = centre - box / 2, centre + box / 2
        coverage = (np.interp(hi, np.arange(len(integral)), integral) - np.interp(lo, np.arange(len(integral)), integral)) / box
        tables.append(np.rint(coverage * (look.dash_steps - 1)) * VARIATION_LEVELS)
    table = np.asarray(tables, dtype=np.int16)
    offsets = (np.arange(len(tables), dtype=np.int64) * (g_max + 1))[:, None] * np.ones((1, width), np.int64)
    # A uint16 offset image lets OpenCV add it to the sampled distance; larger images need int32.
    return table.ravel(), offsets.astype(np.uint16 if table.size <= 65535 else np.int32)


def render_view(scene: Scene, camera: CameraConfig, pose: CameraPose, appearance: Appearance, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 (camera.height, camera.width, 3) frame of `scene` from a camera at `pose`.

    `camera` is the camera as mounted this episode (apply
    `Appearance.apply_to_camera` first); `pose` must use its height and pitch.
    `rng` is drawn from only when the appearance has sensor noise. The same
    inputs (and rng state) give the same bytes.
    """
    return render_look(get_look(scene, appearance), camera, pose, rng)


def render_look(look: Look, camera: CameraConfig, pose: CameraPose, rng: np.random.Generator) -> np.ndarray:
    """`render_view` for an already built `Look` (for instance one with distance filtering off)."""
    scene, appearance = look.scene, look.appearance
    setup = camera_setup(look, camera, pose)
    frame = np.empty((camera.height, camera.width, 3), np.uint8)
    top = setup.ground_top
    if top > 0:
        shift = round((pose.yaw + setup.azimuth_min) * setup.columns_per_radian) % setup.columns_per_turn
        # Only the columns the map reaches (the panorama's repeated tail is that wide): OpenCV's remap
        # refuses a source of 32,767 columns or more, which a full turn of a large image can be.
        span = setup.panorama.shape[1] - setup.columns_per_turn
        cv2.remap(setup.panorama[:, shift : shift + span], setup.sky_map, None, cv2.INTER_NEAREST, dst=frame[:top])
    if top < camera.height:
        _draw_ground(frame[top:], scene, look, setup, camera, pose)
    draw_billboards(frame, scene.billboards, look.sprites, pose, camera, appearance.haze_distance)
    if setup.blur is not None:
        frame = cv2.sepFilter2D(frame, -1, setup.blur, setup.blur, borderType=cv2.BORDER_REPLICATE)
    if setup.noise is not None:
        # A random window of a per-episode noise pool: sensor-like noise for one draw instead of W*H*3.
        oy, ox = divmod(int(rng.integers(0, (camera.height + 1) * (camera.width + 1))), camera.width + 1)
        cv2.add(frame, setup.noise[0][oy : oy + camera.height, ox : ox + camera.width], dst=frame)
        cv2.subtract(frame, setup.noise[1][oy : oy + camera.height, ox : ox + camera.width], dst=frame)
    return frame


def _draw_ground(out: np.ndarray, scene: Scene, look: Look, setup: CameraSetup, camera: CameraConfig, pose: CameraPose) -> None:
    rows, width = out.shape[:2]
    to_ground = image_to_ground(pose, camera)
    to_ground[:, 2] += setup.ground_top * to_ground[:, 1]  # output row 0 is image row ground_top
    field_map = setup.ground_to_field @ to_ground
    # One extra row and column, so the per-pixel change of the offset is a plain difference.
    sampled = cv2.warpPerspective(scene.field, field_map, (width + 1, rows + 1), flags=_WARP,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=scene.field_border)
    offset_ext = cv2.extractChannel(sampled, 0)
    offset = offset_ext[:-1, :-1]
    # Footprint across the road: the larger of the offset's changes to the next column and row
    # (the flat top of the trapezoid that a pixel square covers in offset).
    footprint = cv2.max(cv2.absdiff(offset_ext[:-1, 1:], offset), cv2.absdiff(offset_ext[1:, :-1], offset))
    table_row = cv2.LUT(cv2.convertScaleAbs(footprint, alpha=1 / FOOTPRINT_UNIT), look.level_rows)
    if setup.dash_table is not None:
        dash = cv2.extractChannel(sampled, 1)[:-1, :-1]
        index = cv2.add(dash, setup.dash_offset) if setup.dash_offset.dtype == np.uint16 else setup.dash_offset + dash
        table_row += np.take(setup.dash_table, index)
    # The table lookup map interleaves (column, row) = (offset, table row incl. the variation level).
    lookup = np.empty((rows, width, 2), np.int16)
    lookup[..., 0] = offset
    np.add(table_row, sampled[:-1, :-1, 2], out=lookup[..., 1], casting="unsafe")
    colour = cv2.remap(look.table, lookup, None, cv2.INTER_NEAREST)

    detail = np.empty((rows, width), np.uint8)
    if setup.detail_first is not None:
        # All bands' texture maps at once: ground -> texels of each band's level (anchored a few tiles
        # behind the camera, so every lookup stays inside the tiled texture), after the band's row shift.
        tile = (math.floor(pose.x / setup.detail_period), math.floor(pose.y / setup.detail_period))
        if setup.detail_anchor[0] != tile:
            anchor_x = setup.detail_period * (tile[0] - setup.detail_back)
            anchor_y = setup.detail_period * (tile[1] - setup.detail_back)
            to_texture = setup.detail_scale.copy()
            to_texture[:, 0, 2] = -anchor_x * to_texture[:, 0, 0] - 0.5
            to_texture[:, 1, 2] = -anchor_y * to_texture[:, 1, 1] - 0.5
            setup.detail_anchor = (tile, to_texture)
        maps = setup.detail_anchor[1] @ to_ground @ setup.detail_shift
    band = 0
    for first, end, level in setup.bands:
        if level < 0:
            detail[first:end] = 128
            continue
        cv2.warpPerspective(look.detail_mips[level][0], maps[band], (width, end - first), dst=detail[first:end],
                            flags=_WARP, borderMode=cv2.BORDER_REFLECT)
        band += 1
    # Haze: the surface shows through by haze_keep (folded into the shade), then the haze colour adds.
    shade = cv2.multiply(detail, setup.haze_keep, scale=1 / 255)
    if look.shadow is not None:
        # Shadows are soft (penumbra ~0.5 m): sample them at half resolution and enlarge.
        half = np.array([[2.0, 0, 0.5], [0, 2, 0.5], [0, 0, 1]])
        light = cv2.warpPerspective(look.shadow, field_map @ half, ((width + 1) // 2, (rows + 1) // 2), flags=_WARP,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        light = cv2.resize(light, (width, rows), interpolation=cv2.INTER_LINEAR)
        cv2.multiply(shade, light, dst=shade, scale=1 / 255)
    colour = cv2.multiply(colour, cv2.cvtColor(shade, cv2.COLOR_GRAY2RGB), scale=1 / 128)
    cv2.add(colour, setup.haze_add, dst=out)
