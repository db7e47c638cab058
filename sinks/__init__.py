"""Where results land: the register tables, the unit of work that writes a batch, and the publishers."""
