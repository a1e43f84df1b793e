// Package bench measures the whole pipeline the way an operator would run
// it: catalog events through the producer (outbox on) into the embedded
// broker or a Pulsar cluster, consumed with Redis dedupe into the catalog
// store, until every event is applied; then two baselines on the same broker
// and Redis (raw produce → consume, pipelined SET NX). It reports
// throughput, end-to-end latency percentiles, per-stage costs, CPU and peak
// RSS as report.md with SVG plots.
//
// It is the library of the edxbus-bench binary (cmd/edxbus-bench), kept out
// of the edxbus binary so that the plotting modules do not ship with it.
//
// What it deliberately does not do: assert figures (tests and notes read
// them), or measure against anything but the pipeline the assembly builds.
package bench
