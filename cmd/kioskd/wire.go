package main

import (
	// The simulated board registers itself as board kind "sim", the
	// default config's board, as periph's host drivers register theirs.
	_ "github.com/kioskd/kioskd/board/sim"
)
