// Package board holds board profiles (pin names, UARTs, watchdog path) for
// Raspberry Pi 3, 4 and 5 and the simulated board, and makes the only call
// to periph's host.Init.
package board
