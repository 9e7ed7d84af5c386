"""Carbon accounting, market instruments, offsets, the hash-chained ledger, reports and CLI.

Role: one module per job. The pure parts (no I/O, no wall clock; enforced by import-linter):
``accounting`` (grid intensity per interval, Scope 2 location-based accounting, battery
losses, trend), ``market`` (certificates allocated to imports, residual mix), ``offsets``
(the credit registry's records and checks), ``chain`` (interval records, canonical form, hash
chain, verification) and ``report_html`` (HTML page of a report). The composition of those
parts, still pure: ``compose`` (cycle samples -> chained records; stored rows -> records,
offsets and a verification outcome) and ``report`` (period reports, CSV/JSON/HTML). On top,
``cli`` (the ``dispatch carbon`` commands: the store, files and the wall clock). This package
file imports nothing, so importing one part never loads another.
"""
