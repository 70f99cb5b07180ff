//go:build !race

package payment

const simRace = false
