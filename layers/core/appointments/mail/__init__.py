"""Customer and ops mail: ``render.render`` turns an outbox record and its appointment into what is sent.

Pure: Jinja2 templates shipped in this package (``templates/``), no clock, no AWS. The outbox relay
calls ``render(mail, appointment, catalog=..., branding=settings.branding())`` and sends the result.
Nothing is imported here: a function that only needs ``Branding`` (every one, through its settings)
must not pay for Jinja2.
"""
