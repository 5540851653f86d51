"""Neural networks of SceneGen, re-implemented with the official state-dict names.

Layout (one architecture per file; top-level models only wire parts together):

* ``layers/``      -- building blocks: fp32-computing norms, multi-head attention (SDPA),
  timestep / 3D sin-cos position embeddings, adaLN-modulated transformer blocks, precision helpers.
* ``ss_flow``      -- SceneGen's sparse-structure flow transformer (``SSFlowModel``) with
  per-object and scene-level (global) attention.
* ``position_head`` -- iterative pose regressor fed by the flow model's position token.
* ``ss_decoder``   -- TRELLIS sparse-structure VAE decoder (16^3 x 8 latent -> 64^3 logits).
* ``vggt/``, ``dinov2`` -- image encoders (owned separately).

Submodules are imported explicitly (``from scenegen_core.models.ss_flow import SSFlowModel``);
this package file imports nothing so that loading one model never drags in the others.
"""
