"""The pure parts of predicting: decoding and checking what a request sends, preprocessing the
images exactly as training did, and reading a model's outputs (top-k labels, boxes after NMS).

Plain functions on bytes, numpy arrays and Pillow images that raise the platform's own errors
(``InvalidInput``, ``PayloadTooLarge``). The Ray Serve deployment that uses them comes later;
nothing here imports Ray, an inference engine, or the web framework.
"""
