"""Developer tools run by the Makefile; never deployed."""
