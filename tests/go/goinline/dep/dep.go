// Package dep is a local dependency, so that the binary's buildinfo has `dep` and `=>` lines
// without fetching anything.
package dep

// Twice doubles n.
func Twice(n int) int { return 2 * n }
