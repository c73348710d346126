// Package faulttest puts real faults between a test and the stores Backplane depends on:
// a private PostgreSQL cluster the test may stop, crash and restart on the same port, a
// private redis-server it may kill and restart empty, and Toxiproxy (in process, from
// its Go module) to add latency, cut bandwidth, blackhole or reset connections, or take a
// link down and up. Everything listens on loopback and is torn down when the test ends.
//
// The shared servers on 127.0.0.1:5432 and :6379 are never touched: other tests use
// them at the same time, so a fault there would fail tests that did not ask for one.
//
// Like internal/dbtest, it never skips: a machine without PostgreSQL's server binaries
// or redis-server fails the test, because CI always has them.
package faulttest
