"""Built-in drivers: serve a known model format without a driver program.

One module per format, each a class with `init()`, `run(raw_body)` and, where one
model call can score many requests, `run_batch(raw_bodies)`. Their libraries are
imported inside `init()`, so the runtime itself never needs them: an image gets
them from `modelyard.builder.requirements.builtin_requirements(kind)`.
"""
