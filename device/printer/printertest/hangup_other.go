//go:build !linux

package printertest

func isHangup(error) bool { return false }
