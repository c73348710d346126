// Package bench holds Backplane's end-to-end benchmarks. Each one measures a path beside
// its baseline in the same run, on the same machine, and reports the ratio, because an
// absolute figure from a shared 2-core box says little on its own.
package bench
