"""The admin's rules, shared by the pages and the API: one module per area of ``admin/views/``.

Every function that changes something takes the request (for the acting admin, the firm and
the audit trail), checks its input, raises ``FieldErrors`` (422) for bad input or a 409
``ApiError`` for a change the firm's state forbids, and writes an ``AuditEvent``.
Lookups are always scoped to the firm: another firm's row is "not found".
"""
