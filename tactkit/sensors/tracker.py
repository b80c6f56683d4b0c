"""Marker tracking for marker-gel optical tactile sensors (GelSight Mini: 7x9 markers).

Per frame, in plain numpy + OpenCV (a few ms at 640x480 on one core):

1. **Detect.** Grey image; local background = grey-level *closing* at half resolution
   (dilation removes the dark markers, a box blur smooths it), upsampled; marker "darkness" =
   background - image, lightly blurred; threshold; connected components. Each blob's centroid
   is weighted by ``darkness - threshold`` over its pixels, which is continuous at the blob edge
   and therefore sub-pixel accurate. Blobs far smaller or larger than a rest marker (fragments,
   two markers merged under shear) are set aside rather than trusted.
2. **Reference.** At rest (first frames after connect, or on :meth:`MarkerTracker.rezero`),
   the detected blobs are ordered into the configured ``rows x cols`` grid (robust to a tilted
   camera); a count that does not match the grid is a clear error.
3. **Track.** Each marker is predicted at its previous position (previous displacement field);
   detections are assigned to predictions by the Hungarian method with a distance gate
   (a fraction of the grid pitch). Markers left unassigned are re-predicted from the
   displacement of their assigned neighbours (Gaussian-weighted) and matched again with a
   tighter gate; markers still missing keep the neighbour-interpolated position and are
   flagged ``valid=False``.

Outputs offsets ``[N, 2]`` (position - rest) in pixels and normalised by the image size
(x / width, y / height), plus the rest positions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

log = logging.getLogger(__name__)


@dataclass
class TrackerConfig:
    """Marker tracker settings (``grid`` = [rows, cols] of markers)."""

    grid: tuple[int, int] = (7, 9)
    threshold: float | None = None  # darkness (grey levels) above local background; None: auto at rest
    dark_markers: bool = True  # markers darker than the gel (GelSight); False: bright markers
    marker_diameter_px: float | None = None  # None: estimated from the image and grid
    gate: float = 0.45  # first-pass match radius, fraction of the grid pitch
    rest_frames: int = 3  # frames averaged for the rest reference
    min_area_ratio: float = 0.3  # blobs smaller than this x the rest median area are fragments
    max_area_ratio: float = 1.8  # ... larger: merged markers
    max_elongation: float = 1.5  # major/minor axis ratio above which a blob is two merged markers

    def __post_init__(self) -> None:
        grid = tuple(self.grid) if isinstance(self.grid, (list, tuple)) else (self.grid,)
        if len(grid) != 2 or not all(isinstance(g, (int, np.integer)) and g >= 2 for g in grid):
            raise ValueError(f"tracker grid must be [rows, cols] with both >= 2, got {self.grid!r}")
        self.grid = (int(grid[0]), int(grid[1]))
        if self.threshold is not None and not 0 < self.threshold < 255:
            raise ValueError(f"tracker threshold must be in (0, 255), got {self.threshold}")
        if not 0 < self.gate < 1:
            raise ValueError(f"tracker gate must be in (0, 1) of the grid pitch, got {self.gate}")
        if self.rest_frames < 1:
            raise ValueError(f"tracker rest_frames must be >= 1, got {self.rest_frames}")

    @property
    def n_markers(self) -> int:
        return self.grid[0] * self.grid[1]


@dataclass
class Detections:
    centroids: np.ndarray  # [K, 2] float64 (x, y) px
    areas: np.ndarray  # [K] pixel counts
    peaks: np.ndarray  # [K] max darkness
    elongation: np.ndarray  # [K] major/minor axis ratio (1 = round)


@dataclass
class TrackResult:
    positions: np.ndarray  # [N, 2] px
    offsets_px: np.ndarray  # [N, 2] px, positions - rest
    offsets: np.ndarray  # [N, 2] float32, offsets_px / (width, height)
    valid: np.ndarray  # [N] bool, False where the marker was interpolated from neighbours
    n_detected: int

    @property
    def tracked_fraction(self) -> float:
        return float(self.valid.mean())


class MarkerTracker:
    """Stateful tracker: feed frames with :meth:`update`; the first ``rest_frames`` set the reference."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.rows, self.cols = self.config.grid
        self.n = self.config.n_markers
        self.size: tuple[int, int] | None = None  # (width, height)
        self.rest: np.ndarray | None = None
        self._positions: np.ndarray | None = None
        self._rest_acc: list[np.ndarray] = []
        self._threshold = self.config.threshold
        self._diameter = self.config.marker_diameter_px
        self._area: float | None = None
        self._spacing = 0.0
        self._weights: np.ndarray | None = None
        self._rezero_pending = False

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """True once the rest reference exists."""
        return self.rest is not None

    def reset(self) -> None:
        """Forget the reference; the next ``rest_frames`` frames define a new one from scratch."""
        self.rest = None
        self._positions = None
        self._rest_acc = []
        self._threshold = self.config.threshold
        self._area = None

    def rezero(self) -> None:
        """Make the next frame's tracked positions the new rest (keeps marker identities)."""
        self._rezero_pending = True

    @property
    def rest_normalised(self) -> np.ndarray:
        if self.rest is None or self.size is None:
            raise RuntimeError("tracker has no rest reference yet")
        return (self.rest / np.array(self.size, dtype=np.float64)).astype(np.float32)

    # ------------------------------------------------------------------ detection
    def _gray(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        elif image.ndim != 2:
            raise ValueError(f"tracker expects an HxW or HxWx3 image, got shape {image.shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"tracker expects a uint8 image, got {image.dtype}")
        return image if self.config.dark_markers else cv2.bitwise_not(image)

    def detect(self, image: np.ndarray) -> Detections:
        """Marker blob centroids in ``image`` (BGR or grey, uint8)."""
        gray = self._gray(image)
        h, w = gray.shape
        if self.size is None:
            self.size = (w, h)
        elif self.size != (w, h):
            raise ValueError(f"frame size changed from {self.size} to {(w, h)}")
        if self._diameter is None:
            self._diameter = 0.22 * min(w / self.cols, h / self.rows)
        half = cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        k = max(3, int(round(self._diameter * 0.75)) | 1)  # half-res kernel covering a marker
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
        bg = cv2.blur(cv2.dilate(half, kernel), (k, k))
        bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
        dark = cv2.GaussianBlur(cv2.subtract(bg, gray), (5, 5), 1.0)
        if self._threshold is None:
            otsu, _ = cv2.threshold(dark, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
            thr = max(float(otsu), 8.0)
        else:
            thr = float(self._threshold)
        _, mask = cv2.threshold(dark, thr, 255, cv2.THRESH_BINARY)
        # Label at half resolution (4x fewer pixels; any set pixel of a 2x2 block sets the
        # block), then weight the full-resolution pixels by the label of their block.
        mask_half = cv2.resize(mask, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        n_lab, labels, stats, _ = cv2.connectedComponentsWithStats(
            mask_half, connectivity=8, ltype=cv2.CV_32S
        )
        if n_lab <= 1:
            return Detections(np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0))
        nz = cv2.findNonZero(mask)
        xy = nz.reshape(-1, 2)
        xs, ys = xy[:, 0], xy[:, 1]
        lab = labels[np.minimum(ys >> 1, h // 2 - 1), np.minimum(xs >> 1, w // 2 - 1)]
        wgt = dark[ys, xs].astype(np.float64) - thr
        sw = np.bincount(lab, wgt, n_lab)
        cx = np.bincount(lab, wgt * xs, n_lab) / np.maximum(sw, 1e-9)
        cy = np.bincount(lab, wgt * ys, n_lab) / np.maximum(sw, 1e-9)
        peak = np.zeros(n_lab)
        np.maximum.at(peak, lab, wgt + thr)
        areas = np.bincount(lab, None, n_lab).astype(np.float64)
        # Elongation (sqrt of the covariance eigenvalue ratio): two merged markers are long.
        dx, dy = xs - cx[lab], ys - cy[lab]
        sxx = np.bincount(lab, wgt * dx * dx, n_lab)
        syy = np.bincount(lab, wgt * dy * dy, n_lab)
        sxy = np.bincount(lab, wgt * dx * dy, n_lab)
        tr, det = sxx + syy, sxx * syy - sxy * sxy
        disc = np.sqrt(np.maximum(tr * tr / 4 - det, 0.0))
        elong = np.sqrt((tr / 2 + disc) / np.maximum(tr / 2 - disc, 1e-9))
        keep = np.arange(1, n_lab)
        keep = keep[areas[keep] >= 3]  # single-pixel noise
        return Detections(
            np.stack([cx[keep], cy[keep]], axis=1), areas[keep], peak[keep], elong[keep]
        )

    # ------------------------------------------------------------------ reference
    def _order_grid(self, pts: np.ndarray) -> np.ndarray:
        """Order ``rows*cols`` points row-major, tolerating a tilted grid."""
        d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
        np.fill_diagonal(d, np.inf)
        nn = pts[np.argmin(d, axis=1)] - pts
        ang = np.arctan2(nn[:, 1], nn[:, 0])
        # Fold nearest-neighbour directions to (-45, 45] deg (square-ish lattice) and take the
        # circular median of 4*angle so that horizontal and vertical neighbours agree.
        tilt = np.angle(np.median(np.cos(4 * ang)) + 1j * np.median(np.sin(4 * ang))) / 4
        c, s = np.cos(-tilt), np.sin(-tilt)
        rot = (pts - pts.mean(axis=0)) @ np.array([[c, s], [-s, c]])
        order_y = np.argsort(rot[:, 1], kind="stable")
        rows = order_y.reshape(self.rows, self.cols)
        ordered = np.concatenate([r[np.argsort(rot[r, 0], kind="stable")] for r in rows])
        ry = rot[ordered, 1].reshape(self.rows, self.cols)
        pitch_y = np.median(np.diff(ry.mean(axis=1))) if self.rows > 1 else 1.0
        if np.ptp(ry, axis=1).max() > 0.5 * abs(pitch_y):
            raise ValueError(
                f"markers at rest do not form a {self.rows}x{self.cols} grid "
                f"(row spread {np.ptp(ry, axis=1).max():.1f} px vs row pitch {pitch_y:.1f} px); check tracker.grid"
            )
        return pts[ordered]

    def _set_rest(self, rest: np.ndarray) -> None:
        self.rest = rest.copy()
        self._positions = rest.copy()
        d = np.linalg.norm(rest[:, None] - rest[None], axis=2)
        np.fill_diagonal(d, np.inf)
        self._spacing = float(np.median(d.min(axis=1)))
        sigma = self._spacing
        w = np.exp(-0.5 * (d / sigma) ** 2)
        np.fill_diagonal(w, 0.0)
        self._weights = w

    def _accumulate_rest(self, det: Detections) -> None:
        # Dust, border fragments and merged blobs are not markers; the rest must be the grid.
        # Typical marker area: median of the n largest blobs (noise specks may outnumber markers).
        med = float(np.median(np.sort(det.areas)[-self.n :])) if len(det.areas) else 0.0
        idx = np.flatnonzero(
            (det.areas >= 0.4 * med) & (det.areas <= 2.5 * med) & (det.elongation <= 2.0)
        )
        good = Detections(det.centroids[idx], det.areas[idx], det.peaks[idx], det.elongation[idx])
        if len(good.areas) != self.n:
            raise ValueError(
                f"found {len(good.areas)} markers at rest ({len(det.areas)} blobs), tracker grid "
                f"{self.rows}x{self.cols} expects {self.n}; check tracker.grid and that the gel "
                "is not touched"
            )
        self._rest_acc.append(self._order_grid(good.centroids))
        if self._area is None:
            self._area = float(np.median(good.areas))
            if self._threshold is None:
                # Auto threshold: 40% of the typical marker contrast, well above noise.
                self._threshold = max(0.4 * float(np.median(good.peaks)), 8.0)
            if self.config.marker_diameter_px is None:
                self._diameter = 2.0 * np.sqrt(self._area / np.pi)
        if len(self._rest_acc) >= self.config.rest_frames:
            self._set_rest(np.mean(self._rest_acc, axis=0))
            self._rest_acc = []
            log.info("marker tracker: rest reference of %d markers, pitch %.1f px", self.n, self._spacing)

    # ------------------------------------------------------------------ tracking
    def _interpolate(self, disp: np.ndarray, known: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Displacement at ``targets`` from the ``known`` markers' displacements.

        A Gaussian-weighted local affine fit (exact for shear and rotation, close for smooth
        indentation), ridge-regularised towards the weighted mean where neighbours are
        few or collinear; the nearest known marker where none is near.
        """
        w = self._weights[np.ix_(targets, known)]  # [T, K]
        sw = w.sum(axis=1)
        x = self.rest[None, known] - self.rest[targets, None]  # [T, K, 2], centred on the target
        x = np.concatenate([x / self._spacing, np.ones(x.shape[:2] + (1,))], axis=2)
        m = np.einsum("tk,tki,tkj->tij", w, x, x)
        m += np.einsum("t,ij->tij", 0.05 * sw + 1e-9, np.diag([1.0, 1.0, 0.0]))
        m[:, 2, 2] += 1e-9
        rhs = np.einsum("tk,tki,kd->tid", w, x, disp[known])
        out = np.linalg.solve(m, rhs)[:, 2, :]  # value of the fit at the target (x = 0)
        far = sw < 1e-6
        if far.any():  # isolated: nearest known marker
            d = np.linalg.norm(self.rest[targets[far], None] - self.rest[None, known], axis=2)
            out[far] = disp[known][np.argmin(d, axis=1)]
        return out

    @staticmethod
    def _assign(pred: np.ndarray, cand: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:
        if len(pred) == 0 or len(cand) == 0:
            return np.zeros(0, int), np.zeros(0, int)
        dist = np.linalg.norm(pred[:, None] - cand[None], axis=2)
        cost = np.where(dist < gate, dist, 1e6)
        ri, ci = linear_sum_assignment(cost)
        ok = dist[ri, ci] < gate
        return ri[ok], ci[ok]

    def track(self, det: Detections) -> TrackResult:
        """Match detections to the reference markers (requires :attr:`ready`)."""
        assert self.rest is not None and self._positions is not None and self.size is not None
        a = self._area or 1.0
        cfg = self.config
        trusted = (
            (det.areas >= cfg.min_area_ratio * a)
            & (det.areas <= cfg.max_area_ratio * a)
            & (det.elongation <= cfg.max_elongation)
        )
        cand = det.centroids[trusted]
        pos = self._positions
        gate1 = self.config.gate * self._spacing
        mi, ci = self._assign(pos, cand, gate1)
        new = np.full_like(pos, np.nan)
        new[mi] = cand[ci]
        valid = np.zeros(self.n, dtype=bool)
        valid[mi] = True
        lost = np.flatnonzero(~valid)
        if len(lost) and valid.any():
            disp = new - self.rest
            pred = self.rest[lost] + self._interpolate(disp, np.flatnonzero(valid), lost)
            free = np.setdiff1d(np.arange(len(cand)), ci)
            li, fi = self._assign(pred, cand[free], 0.6 * gate1)
            new[lost[li]] = cand[free[fi]]
            valid[lost[li]] = True
            lost = np.flatnonzero(~valid)
            if len(lost):
                disp = new - self.rest
                new[lost] = self.rest[lost] + self._interpolate(disp, np.flatnonzero(valid), lost)
        elif len(lost):
            new[lost] = pos[lost]  # nothing seen: hold the previous field
        self._positions = new
        if self._rezero_pending:
            self._set_rest(new)
            self._rezero_pending = False
        off_px = new - self.rest
        scale = np.array(self.size, dtype=np.float64)
        return TrackResult(new.copy(), off_px, (off_px / scale).astype(np.float32), valid, int(len(det.areas)))

    def update(self, image: np.ndarray) -> TrackResult | None:
        """Process one frame. Returns ``None`` while the rest reference is being captured."""
        det = self.detect(image)
        if self.rest is None:
            self._accumulate_rest(det)
            if self.rest is None:
                return None
            res = self.track(det)
            return res
        return self.track(det)
