"""Evaluation of predicted scenes against ground truth: metrics, baselines, pictures and a CLI.

* `metrics`: the SceneGen/MIDI geometry protocol (Chamfer distance, F-score, IoU-B, after rigid
  registration) and robotics metrics in metres in the camera frame (centroid error, volumetric
  IoU, collision completeness, false occupancy).
* `baselines` (masks from `scenegen_core.segmentation.depth_proposals` when asked): convex-hull and table-extruded oriented-box predictions from depth.
* `detection`: recall / precision of the depth proposals' masks (mask IoU, visible objects).
* `visualization`: overlays of posed meshes on images and one summary picture per scene.
* `evaluate`: the command line `python -m scenegen_core.evaluation.evaluate`.
"""
