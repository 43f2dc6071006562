"""What training minimizes and reports: Keras losses (`losses`), Keras metrics as pure
init/update/result triples (`metrics`, `metrics_accuracy`, `metrics_confusion`), and the
per-output objective that combines them (`objective`).

Import rule: runtime.objective imports nothing from the trainer, the session, the data
package or the optimizers; only `modelspec.schema` specs and the checked spec.
"""
