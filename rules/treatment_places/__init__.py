"""The treatment-place register (behandlingsstedsregistret) as pure rules: identifiers, forms, states,
categories and fees (spec/treatment-places.md). No I/O: the handler in `streams/handlers/registrations.py`
calls them with what the register holds.
"""
