//go:build !linux || !(amd64 || arm64)

package main

const canDiverge = false

func divergeThread() {}
