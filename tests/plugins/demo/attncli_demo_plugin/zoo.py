"""The plugin's rows: plain data, so `attncli list` shows them without importing torch."""

from attncli.registry import add_spec

add_spec(
    "spatial_gate_lite",
    "attncli_demo_plugin.blocks:SpatialGateLite",
    input_shape=(1, 16, 8, 8),
    paper=("A demo plugin block",),
    defaults={"channels": 16, "kernel_size": 3},
    aliases=("sgl",),
    summary="Demo plugin: x * sigmoid(conv([max_c x, mean_c x])).",
)
