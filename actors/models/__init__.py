"""Models as plain code: recognizing an upload, loading it safely, converting it to ONNX, checking
the result three ways (ONNX checker, an ONNX Runtime session, numerical parity), and the presets.

Nothing here imports Ray; :mod:`actors.conversion_task` runs it as a Ray task.
"""
