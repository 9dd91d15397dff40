"""``make demo``: the whole product end to end on the emulated lab.

``flow`` runs it (lab up, the real ceremonies, signing Bitcoin, Ethereum and Solana requests
through QR frames, a refusal), ``ceremonies`` drives the ceremony prompts, ``chains`` and
``parties`` build requests and counterparties with independent wallet libraries.
"""
