//go:build race

package integration_test

// raceDetector is set when the tests run under -race, which slows every
// goroutine of the test process several times over.
const raceDetector = true
