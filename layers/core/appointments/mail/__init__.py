"""Customer and ops mail: ``render`` turns an outbox record and its appointment into what is sent.

Pure: Jinja2 templates shipped in this package (``templates/``), no clock, no AWS. The outbox relay
calls ``render(mail, appointment, catalog=..., branding=settings.branding())`` and sends the result.
"""

from appointments.mail.branding import Branding
from appointments.mail.render import RenderedMail, render

__all__ = ["Branding", "RenderedMail", "render"]
