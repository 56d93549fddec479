"""The guide's redirect cases inside a Django project, with redirectory.toolkit (see views.py)."""
