package pool

import "runtime"

func numCPU() int { return runtime.NumCPU() }
