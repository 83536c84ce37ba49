"""Pretrained networks (musicnn), ported to Keras 3; importing this package does not import TensorFlow."""
