"""The scoring runtime that runs inside each replica, in the image's environment.

It imports nothing from modelyard above `domain/`: the environment holds only the
image's locked requirements, this package and its own server dependencies.
"""
