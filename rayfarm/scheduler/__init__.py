"""Who renders what, and what happens next: the order (pure), leasing chunks, results, and the sweep.

``order.py`` ranks tasks for a node (pure); ``dispatch.py`` leases chunks in that order, ``results.py``
records what a node reports and ``sweep.py`` runs the background checks (lost nodes, expired leases,
time limits). The SQL they run is in ``rayfarm.store.leases``; what each event does to a task or frame
is in ``rayfarm.domain.transitions``.
"""
