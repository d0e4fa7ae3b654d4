"""Vendor sources: one module each. A source verifies a vendor's signature on the raw body and parses
the payload into canonical events. Sources do no I/O: secrets and time are handed to them.
"""
