"""Bulk Upload pages."""
