"""serve stage: an OpenAI-compatible transcription server (FastAPI + uvicorn) with a web page.

Modules: app (create_app, ServeConfig, routes), request (multipart parsing and validation),
pipeline (decode, chunk, transcribe one upload), batcher (micro-batching onto the model),
formats (json/text/srt/vtt/verbose_json; pure, reusable), errors (OpenAI error shape),
metrics (Prometheus text), runner (uvicorn in the foreground or in a thread), static/ (web page).
Only `formats` and `metrics` import without the `serve` extra.
"""
