"""VGGT (Visual Geometry Grounded Transformer), re-implemented with VGGT-1B's state-dict names.

``layers/`` building blocks, ``aggregator`` (the part SceneGen uses), ``heads/`` camera / DPT /
track heads, ``vggt`` the full model wiring them.
"""

from scenegen_core.models.vggt.aggregator import AggregatorOutput, VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.models.vggt.vggt import VGGT, VGGTConfig, VGGTOutput, aggregator_state_dict

__all__ = [
    "AggregatorOutput",
    "VGGT",
    "VGGTAggregator",
    "VGGTAggregatorConfig",
    "VGGTConfig",
    "VGGTOutput",
    "aggregator_state_dict",
]
