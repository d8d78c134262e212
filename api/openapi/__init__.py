"""The OpenAPI document: how it is generated (``spec``), what each operation says
(``operations``), and where it is served (``views``)."""
