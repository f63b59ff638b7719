"""Trainers: ``haloguard train <kind>`` reproduces each model from the built training data.

Each trainer lives in its own module (``haloguard.train.embedded``, and later
``generative``, ``seqcls``, ``exchange``) and is imported only when its command runs.
"""
