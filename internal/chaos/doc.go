// Package chaos holds Vigil's end-to-end reliability tests (it has no
// non-test code). They run the real `vigil process` and `vigil sink`
// commands as separate operating-system processes against an in-process
// Kafka-protocol broker (kfake) and a real redis-server, replay a fixed
// generated workload, and disturb the run: kill -9 of processor instances at
// random points, rebalances between two instances, a Redis crash and
// restart, and a broker that refuses requests for a while. The test then
// checks that the decisions, lock commands, incidents, dead letters, late
// records, session state and profiles are exactly those of an undisturbed
// run of the same workload: nothing lost, nothing doubled.
//
// See docs/RELIABILITY.md for the guarantees these tests stand behind.
package chaos
