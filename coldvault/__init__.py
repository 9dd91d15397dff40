"""coldvault: the library behind the air-gapped signing appliance and the key ceremonies.

Layering (one way; a test enforces it): ``coldvault`` never prints, never imports click,
and only ``coldvault.backends`` imports hardware libraries (python-pkcs11, pyscard,
pyzbar, zxing-cpp, OpenCV).
"""

__version__ = "0.1.0"
