// Package tools pins the developer tools (go-task, benchstat) in their own
// module, so their many dependencies stay out of Vigil's go.mod. Run them
// with `go tool -modfile=tools/go.mod task` and `... benchstat`.
package tools
