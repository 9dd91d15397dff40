"""``make demo``: the product end to end on the emulated lab (:mod:`.flow`), with the trust
material made by the real ceremonies (:mod:`.ceremonies`), counterparties and coordinators
built on independent libraries (:mod:`.parties`, :mod:`.chains`)."""
