// Package payment owns the transaction state machine: providers behind
// interfaces, timeouts, the bbolt journal, recovery at boot, the
// vend-exactly-once rule and the control API handlers. It imports protocol
// types and never device or board: effects reach hardware through sink
// interfaces that the service is wired with.
package payment
