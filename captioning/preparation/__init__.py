"""Build-time model preparation: `python -m captioning.preparation` (see __main__.py).

Runs in the Dockerfile's model stage and from the repository root; never shipped in the function image.
"""
