"""`segwatch bench`: throughput, latency, recovery, memory and ingest of the real pipeline, measured on this
machine side by side with a bare aiokafka consumer and Kafka's own ConsumerPerformance tool.

Modules: `workload` (the synthetic events and the expected figures, from `segwatch.core.book.Book`),
`kafka` (fast preloading, following the figures and alerts, cleanup), `bare` (the bare consumer, run as its
own process), `javatool` (ConsumerPerformance), `procfs` (RSS from /proc), `stats` (percentiles), `runner`
(the measurements in order) and `report` (the table and the JSON result file).
"""
