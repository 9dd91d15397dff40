"""coldvault's own virtual OpenPGP card (spec v3.4 subset) for vsmartcard's vpcd reader.

* :mod:`.card` — the APDU state machine (``OpenPgpCard``), testable without sockets.
* :mod:`.state` — the persistent JSON state file (EMULATOR ONLY: private key in clear).
* :mod:`.vpcd` — vpcd's socket protocol; ``python -m hardware_emulators.openpgp_card``.
* :mod:`.controller` — ``VirtualCard``: insert/remove/pull a card process into a reader.
"""
