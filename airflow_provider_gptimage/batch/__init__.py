"""The machinery of :class:`~airflow_provider_gptimage.operators.batch.GPTImageBatchGenerateOperator`.

:mod:`.run` (one run of a batch, in small steps), :mod:`.create` (the creates of one pass), :mod:`.outputs`
(images already kept, and new copies), :mod:`.records` and :mod:`.store` (what is persisted, and where),
:mod:`.summary` (report, progress line, failure summary), :mod:`.deferral` (a ``dag.test()`` workaround).
"""
