"""The appointment domain: pure models and rules, no I/O and no clock of its own."""
