"""The Connect page and the admin Connections page (staff and admins)."""
