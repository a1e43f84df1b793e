// Command modcheck fails when go.mod's direct/indirect markers drift from
// what the module's code imports. Run it from the module root:
//
//	go run ./internal/modcheck
//
// A requirement must be direct (no "// indirect" comment) exactly when a
// package of this module imports a package of that module, in its own files
// or in its tests; that is the rule `go mod tidy` applies. modcheck reports
// each module that is
//
//   - marked // indirect but imported directly,
//   - marked direct but not imported directly by any package of the module,
//   - imported directly but not required in go.mod at all.
//
// It reads the imports through `go list -e -deps -test` (so a package that
// does not compile while the tree is being edited still counts) plus the
// files the current GOOS, GOARCH and build tags leave out, which tidy counts
// too. go list runs on a scratch copy of go.mod and go.sum, so modcheck never
// edits them; an import that no requirement provides makes go list ask the
// module proxy which module does. It does not check versions, go.sum or
// whether every indirect requirement is still needed: `go mod tidy` owns
// those.
//
// The go command it runs is $GO if set, else "go" from PATH. Exit status: 0
// when go.mod agrees with the code, 1 when it drifts, 2 when the check could
// not run.
package main
