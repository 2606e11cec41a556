"""Pixel-level evidence for two pictures brought to the same size and orientation.

MSE, NRMSE and SSIM are computed per colour band after resizing the larger
picture to the smaller one's size, and the worst band is reported (so a
recoloured copy shows up). NRMSE is normalised by the Euclidean norm of the
reference, as scikit-image's default. SSIM is Wang et al., "Image quality
assessment: from error visibility to structural similarity" (2004): Gaussian
window sigma 1.5, K1 = 0.01, K2 = 0.03, data range 255. The histogram distance
is the Hellinger distance of 32-bin luminance histograms (0 same, 1 disjoint).
The template correlation is the normalised cross-correlation of the two
blurred grayscale pictures (OpenCV's TM_CCOEFF_NORMED at zero offset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints.local import opencv

__all__ = ["PixelEvidence", "align", "pixel_evidence"]

U8 = npt.NDArray[np.uint8]
Float = npt.NDArray[np.float64]

#: pictures are compared at this long side at most: enough for SSIM to see structure, cheap to compute
COMPARE_SIDE = 256


@dataclass(frozen=True, slots=True)
class PixelEvidence:
    """Pixel metrics of two aligned pictures (all but SSIM and correlation: lower is more alike)."""

    mse: float
    nrmse: float
    ssim: float
    histogram_distance: float
    template_correlation: float


def align(reference: U8, other: U8) -> tuple[U8, U8]:
    """Both pictures resized (area averaging) to the smaller one's size, capped at ``COMPARE_SIDE``."""
    cv2 = opencv()  # imported where used: most commands never need it

    h = min(reference.shape[0], other.shape[0])
    w = min(reference.shape[1], other.shape[1])
    scale = min(1.0, COMPARE_SIDE / max(h, w))
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    ra = np.asarray(cv2.resize(reference, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    rb = np.asarray(cv2.resize(other, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return ra, rb


def _ssim(a: Float, b: Float) -> float:
    cv2 = opencv()

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: Float) -> Float:
        out = np.asarray(cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT), dtype=np.float64)
        return out

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def pixel_evidence(reference: U8, other: U8) -> PixelEvidence:
    """Metrics of ``other`` against ``reference``; both (h, w, 3) uint8, any sizes."""
    cv2 = opencv()

    a8, b8 = align(reference, other)
    a = a8.astype(np.float64)
    b = b8.astype(np.float64)
    mses, nrmses, ssims = [], [], []
    for band in range(3):
        x, y = a[..., band], b[..., band]
        mse = float(np.mean((x - y) ** 2))
        norm = float(np.sqrt(np.mean(x * x)))
        mses.append(mse)
        nrmses.append(np.sqrt(mse) / norm if norm > 0 else (0.0 if mse == 0 else 1.0))
        ssims.append(_ssim(x, y))
    ga = cv2.cvtColor(a8, cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(b8, cv2.COLOR_RGB2GRAY)
    ha = np.bincount(ga.ravel() // 8, minlength=32) / ga.size
    hb = np.bincount(gb.ravel() // 8, minlength=32) / gb.size
    hellinger = float(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(ha * hb))))))
    ba = cv2.GaussianBlur(ga, (0, 0), 2.0).astype(np.float32)
    bb = cv2.GaussianBlur(gb, (0, 0), 2.0).astype(np.float32)
    if float(ba.std()) < 1e-3 or float(bb.std()) < 1e-3:
        # correlation is undefined for flat pictures: call them alike only if their colours are
        same_colour = np.allclose(a.mean(axis=(0, 1)), b.mean(axis=(0, 1)), atol=4.0)
        corr = 1.0 if same_colour and np.allclose(ba, bb, atol=2.0) else 0.0
    else:
        corr = float(cv2.matchTemplate(ba, bb, cv2.TM_CCOEFF_NORMED)[0, 0])
    return PixelEvidence(
        mse=max(mses),
        nrmse=float(max(nrmses)),
        ssim=min(ssims),
        histogram_distance=hellinger,
        template_correlation=corr,
    )
