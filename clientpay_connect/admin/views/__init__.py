"""The admin area: one module per section, each with its pages and its JSON API."""
