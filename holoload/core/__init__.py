"""Pure core: no I/O, no event loop; time is always an argument."""
