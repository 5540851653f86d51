"""Object masks for the pipeline when the camera does not publish them.

`depth_proposals`: table plane (RANSAC) + clustering of the points above it (open3d); masks
directly from depth, in one object order across views with known extrinsics.
"""
