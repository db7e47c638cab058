"""What the benchmarks share, one job per module: `broker` (producing, the assignment, the ceiling),
`register` (a fresh database, counting rows), `timing` (results, step and GC timers, CPU sampling),
`worker` (the real worker timed in this process), `deployed` (the real `reghub worker --processes N`
command timed from outside) and `stage` (the reports on the topic, the closing
summary). The modes (`bench.throughput`, `bench.throughput_workers`, `bench.compare`,
`bench.latency`, `bench.rebuild`) import from here and never from one another's entry points."""
