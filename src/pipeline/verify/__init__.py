"""``verify``: prove each table's target rows equal its MySQL rows, or name the keys that differ.

Everything verify is, in one folder: ``run`` (one table's comparison and the whole
command), ``plan`` (its scope, columns and key), ``compare`` (checksummed segments,
leaves merged by key), ``report`` (the JSON contract), ``repair`` (re-extract, delete,
under the table's lock) and ``quarantine_release``. The SQL each side runs lives
where the layers want it: the row text rules in :mod:`src.core.row_compare` and
:mod:`src.core.digest_side`, MySQL's side in :mod:`src.backup.source_digest`, the
target's in :mod:`src.load.target_digest`. docs/verify.md says how it compares.
"""
