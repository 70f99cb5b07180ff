//go:build race

package payment

// Under the race detector the simulation runs about seven times slower
// (50 seeds/s on two cores against 370): TestSim runs fewer seeds by
// default so that `make test` spends about 20 s on it.
const simRace = true
