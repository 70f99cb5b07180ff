package main

// The simulated board registers itself as board kind "sim", the default
// config's board, as periph's host drivers register theirs: the
// firmware links it for `make run` and the tests, and a config naming
// another kind never touches it.
import _ "github.com/kioskd/kioskd/board/sim"
