"""Sign requests: parse untrusted bytes, build the operator's review, plan HSM signatures.

Every request module (``psbt``, ``ethereum``, ``solana``) turns untrusted bytes into a
:class:`~coldvault.requests.base.PreparedRequest`: what the operator and approvers see
(:class:`~coldvault.requests.base.Review`), what the HSM must sign
(:class:`~coldvault.requests.base.SignJob`) and how signatures become the response.
"""
