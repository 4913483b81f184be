"""The management API: a FastAPI app (routes per resource, the guard, error mapping, middleware)
and the Ray actor that runs it under uvicorn."""
