"""`modelspec import`: Keras 3 `.keras` archives to a spec (and a checkpoint), and the
layout facts that `runtime/export/keras_file.py` shares to write them.

Import rule: nothing here imports Keras, and nothing from the archive is executed —
the archive is read with `zipfile`, `json` and `h5py` only (no pickle, no Lambda
bodies, no custom objects). JAX is imported only by `weights.write_checkpoint`.
"""
