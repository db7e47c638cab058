"""The law as pure functions: no I/O, no clocks, no settings; every input is an argument."""
