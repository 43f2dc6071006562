"""Training and prediction data: source readers (`sources`, `csv_source`, `npfiles`,
`image_folder` with `image_resize`),
the raw arrays they produce (`raw`), the checks against the model before step 1
(`checks`, `finite`), the deterministic batching (`dataset`) and `predict --input` files
(`predict_inputs`).

Import rule: runtime.data imports nothing from the trainer, the session or the other
runtime packages (objective, optim), and no JAX: it reads the loss kind a target needs
from the loss spec's `label_kind`, not from the loss implementation.
"""
