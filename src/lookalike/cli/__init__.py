"""The command line: a thin shell over the library.

Fingerprinting works on small matrices, one picture per process; the maths
library's own thread pool only adds contention there, so the command line
asks for one thread per process unless the user has said otherwise. (This
runs before NumPy is first imported by the command.)
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
