"""Incremental catalogs: pay only for new and changed products, never twice for the same image.

The layout of a catalog folder is in :mod:`.layout`; its persisted records in :mod:`.records`; the
manifest and the state a run plans from in :mod:`.state`; the journal of jobs in flight in :mod:`.journal`;
replaced and removed images in :mod:`.history`; a run's plan and report in :mod:`.run`. The decisions
themselves (new, changed, unchanged, removed; the spend guard) are pure, in
:mod:`airflow_provider_gptimage.protocol.catalog`.
"""
