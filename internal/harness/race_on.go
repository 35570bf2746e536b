//go:build race

package harness

// raceEnabled: the tests run with -race, so the binary they start is built
// with it too and a data race in the connector fails the run (the race
// detector exits the process with status 66 and prints the race).
const raceEnabled = true
