package config

// The default config's board is "sim", which registers itself with
// board when linked, as it is in the firmware (cmd/kioskd/wire.go).
import _ "github.com/kioskd/kioskd/board/sim"
