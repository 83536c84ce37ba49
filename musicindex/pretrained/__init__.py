"""Pretrained embedding models: the registry (``registry``: what a model is to the index, and which ones it uses),
musicnn as one of them (``musicnn_embedder``: ONNX Runtime, ``runtime``; the Keras 3 port, ``musicnn``). Knows no
database; importing this package (or the registry) imports no network and not TensorFlow."""
