"""Hardware backends: the only code that imports hardware libraries.

Each module implements one seam of the library for one kind of device, and is imported
explicitly by the front end that opens the device (importing this package loads nothing):

* ``pkcs11/`` -- the keystore seam (:class:`coldvault.keys.keystore.Keystore`) on any PKCS#11
  token (SoftHSM2 in the lab, a network HSM in production), with CKR codes translated once.
* ``pcsc`` -- the card connection seam (``send_and_receive(apdu)``) over PC/SC (pyscard).
* ``v4l2_camera``, ``serial_scanner`` -- frame and text sources for the QR transport.
* ``qr_decode`` -- QR image decoding (zxing-cpp, ZBar as a fallback).
"""
