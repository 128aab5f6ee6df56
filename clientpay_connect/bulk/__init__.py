"""Bulk Upload: a CSV/TXT file of invoices becomes reviewed rows, then payment links."""
