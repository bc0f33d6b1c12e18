// Package interop_tests holds the cross-language tests: Go tests here start
// Python peers (the interpreter from internal/testenv, with the gobridge
// package installed by `make venv`), and the pytest files beside them start
// Go peers (the gobridge command). Every pairing is covered: Go->Go,
// Go->Python, Python->Go and Python->Python.
package interop_tests
