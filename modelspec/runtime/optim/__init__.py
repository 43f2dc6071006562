"""Optimizers with Keras 3's exact step semantics: the optax transformation around an
update rule (`optimizers`), the rules themselves by family (`rules` with the shared
helpers, `rules_momentum`, `rules_accumulators`, `rules_scaled`) and learning-rate
schedules (`schedules`). Each optimizer and schedule spec names its function here
(`update_rule`, `builder`).

Import rule: runtime.optim imports nothing from the trainer, the session or the other
runtime packages; only `modelspec.schema`.
"""
