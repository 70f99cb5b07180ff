// Package device holds narrow hardware drivers (led, relay, printer,
// serial, watchdog, mdb) in subpackages, each behind an interface its consumer
// owns and each with a test fake.
package device
