"""How each resource is shaped for the page and the JSON API alike (one module per resource): the templates and
the JSON answers read the same dictionaries, so a list looks the same on a page, in ``/api/library/`` and to the
player's script."""
