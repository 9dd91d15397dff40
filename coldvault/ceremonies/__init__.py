"""Offline key ceremonies as a library: typed parameters in, prompts through an Operator.

Each ceremony is one function ``ceremony(operator, params, <hardware>) -> result``:

==========================  ===============================  ==========================
ceremony                    parameters                       hardware handed in
==========================  ===============================  ==========================
:func:`init_appliance`      :class:`InitAppliance`           HSM token, cards (quorum)
:func:`enrol_cards`         :class:`EnrolCards`              cards
:func:`generate_seed`       :class:`GenerateSeed`            HSM token, cards (witness)
:func:`provision_from_backup`, :func:`extend_pool`
                            :class:`RecoverPool`             HSM token, cards
:func:`approve_document`    :class:`ApproveDocument`         cards
:func:`register_wallet`     :class:`RegisterWallet`          HSM token, QR decoder
:func:`revoke_card`, :func:`replace_card`
                            :class:`CardChange`              cards
:func:`shard_backup`        :class:`ShardBackup`             share devices, cards (witness)
:func:`restore_drill`       :class:`RestoreDrill`            share devices, fresh token,
                                                             cards (witness)
==========================  ===============================  ==========================

Parameters are frozen and checked when made (``ValueError`` for a programming mistake,
:class:`ParameterError` for a choice an operator may not make).  Every line shown and
every answer read goes through the :class:`Operator` protocol; hardware comes in as
objects (:mod:`coldvault.ceremonies.hardware`: ``HsmToken``, ``Cards``), never looked
for.  Each run writes a hash-chained transcript (:mod:`coldvault.ceremonies.run`); an
operator's "no" or Ctrl-C ends it as ``aborted`` with the reason ``cancelled`` and
raises :class:`coldvault.errors.Cancelled`.  Results are frozen values with ``to_dict()``
for ``--json`` output.

Modules: ``operator`` (the protocol), ``params``, ``run`` (transcript lifecycle, secret
wiping), ``hardware`` (the seams), ``backup`` (dice, paper words and their checks,
recovery), ``exports``, ``seed``, ``provision``, ``appliance``, ``enrol``, ``proposals``
(what admins are shown), ``approve``, ``register`` (multisig wallets from coordinators),
``revoke``, ``devices`` (backup tokens and custodian
cards as share targets, their PIN prompts), ``sharding`` (``ceremony backup``), ``drill``
(``drill run``), ``card_pins`` (a holder's ``coldvault card
status|unblock|change-pin|set-reset-code``, each change with its transcript).
"""

from coldvault.ceremonies.appliance import InitAppliance, init_appliance
from coldvault.ceremonies.approve import ApproveDocument, approve_document
from coldvault.ceremonies.drill import RestoreDrill, restore_drill
from coldvault.ceremonies.enrol import EnrolCards, enrol_cards
from coldvault.ceremonies.operator import Operator
from coldvault.ceremonies.params import ParameterError
from coldvault.ceremonies.provision import RecoverPool, extend_pool, provision_from_backup
from coldvault.ceremonies.register import RegisterWallet, register_wallet
from coldvault.ceremonies.revoke import CardChange, replace_card, revoke_card
from coldvault.ceremonies.seed import GenerateSeed, generate_seed
from coldvault.ceremonies.sharding import ShardBackup, shard_backup

__all__ = [
    "ApproveDocument",
    "CardChange",
    "EnrolCards",
    "GenerateSeed",
    "InitAppliance",
    "Operator",
    "ParameterError",
    "RecoverPool",
    "RegisterWallet",
    "RestoreDrill",
    "ShardBackup",
    "approve_document",
    "enrol_cards",
    "extend_pool",
    "generate_seed",
    "init_appliance",
    "provision_from_backup",
    "register_wallet",
    "replace_card",
    "restore_drill",
    "revoke_card",
    "shard_backup",
]
