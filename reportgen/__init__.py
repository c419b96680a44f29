"""reportgen: CNN visualization reports comparing VGG and ResNet (MXNet/Gluon)."""

__version__ = "0.1.0"
