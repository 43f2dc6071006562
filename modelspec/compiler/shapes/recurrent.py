"""Shape rules: LSTM, GRU over (batch, timesteps, features)."""

from __future__ import annotations

from modelspec.compiler.shapes.registry import float_out, known_last, need_rank, rule
from modelspec.compiler.types import LayerShape, ParamInfo, TensorType


@rule("LSTM", "GRU")
def rnn(layer, x: TensorType) -> LayerShape:
    need_rank(x, 3, "(batch, timesteps, features)")
    d, u = known_last(x), layer.units
    gates = 4 if layer.type == "LSTM" else 3
    params = [
        ParamInfo("kernel", (d, gates * u), ("embed", "mlp")),
        ParamInfo("recurrent_kernel", (u, gates * u), (None, "mlp")),
    ]
    if layer.use_bias:
        if layer.type == "GRU" and layer.reset_after:
            params.append(ParamInfo("bias", (2, gates * u), (None, "mlp")))
        else:
            params.append(ParamInfo("bias", (gates * u,), ("mlp",)))
    shape = (x.shape[0], x.shape[1], u) if layer.return_sequences else (x.shape[0], u)
    return LayerShape(TensorType(shape, float_out(x)), tuple(params))
