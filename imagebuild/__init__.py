"""Build-time tools for the function image (never copied into it): the Docker engine, the stand-in
Lambda base image, the offline wheelhouse, `make image` and `make image-test`.

    python -m imagebuild image [--runtime onnx|torch] [--precision ...] [--tag ...]
    python -m imagebuild image-test [--runtimes onnx,torch]
"""
