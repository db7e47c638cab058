"""The faust app and the register's batch path: it wires schemas -> rules -> sinks and nothing else."""
