"""Appointment desk core: domain, services, vendor sources, mail and AWS adapters.

Shipped to Lambda as the ``CoreLayer``; importing any module here never touches AWS.
"""
