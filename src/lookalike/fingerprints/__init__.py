"""Fingerprints: one module per signal, the ``Fingerprint`` value object and its codec."""

from lookalike.fingerprints.batch import FileResult, analyse_files, default_jobs, fingerprint_files
from lookalike.fingerprints.codec import (
    fingerprint_from_bytes,
    fingerprint_from_text,
    fingerprint_to_bytes,
    fingerprint_to_text,
)
from lookalike.fingerprints.compute import (
    PIXELS_MIME,
    WORKING_SIDE,
    Analysis,
    ImageSource,
    analyse,
    analyse_source,
    fingerprint,
    fingerprint_bytes,
    full_pixel_digest,
    grid_signals,
    perceptual_signals,
)
from lookalike.fingerprints.dct import Dihedral, phash_variants_estimated, transform_pixels
from lookalike.fingerprints.model import FINGERPRINT_VERSION, Fingerprint, FingerprintDict, PerceptualSignals, Signal

__all__ = [
    "FINGERPRINT_VERSION",
    "PIXELS_MIME",
    "WORKING_SIDE",
    "Analysis",
    "ImageSource",
    "Dihedral",
    "Fingerprint",
    "FileResult",
    "FingerprintDict",
    "PerceptualSignals",
    "Signal",
    "analyse",
    "analyse_files",
    "analyse_source",
    "default_jobs",
    "fingerprint",
    "fingerprint_bytes",
    "fingerprint_files",
    "fingerprint_from_bytes",
    "fingerprint_from_text",
    "fingerprint_to_bytes",
    "fingerprint_to_text",
    "full_pixel_digest",
    "grid_signals",
    "perceptual_signals",
    "phash_variants_estimated",
    "transform_pixels",
]
