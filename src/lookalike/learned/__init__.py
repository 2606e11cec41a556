"""The optional learned tier: image embeddings from an ONNX encoder run offline, searched by cosine.

Needs the ``learned`` extra (onnxruntime, onnx, faiss-cpu and the EfficientNet-Lite0 weights'
package); without it, ``load_embedder`` raises ``ConfigError`` naming the extra. Importing this
package imports none of them.
"""

from lookalike.learned.model import EXTRA_HINT, Embedder, Preprocess, load_embedder, requested_embedder
from lookalike.learned.search import ANN_THRESHOLD, EmbeddingIndex, Neighbours

__all__ = [
    "ANN_THRESHOLD",
    "EXTRA_HINT",
    "Embedder",
    "EmbeddingIndex",
    "Neighbours",
    "Preprocess",
    "load_embedder",
    "requested_embedder",
]
