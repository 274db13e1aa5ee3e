"""Build-time tools for the function image (never copied into it): the Docker engine, the stand-in
Lambda base image, the offline wheelhouse, `make image` and `make image-test`.

    python -m handler.build image [--runtime onnx|torch] [--precision ...] [--tag ...]
    python -m handler.build image-test [--runtimes onnx,torch]
"""
