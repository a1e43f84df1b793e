package main

import (
	"go/build/constraint"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fixtureGoMod = `module example.com/app

go 1.26

require (
	example.com/direct v1.0.0
	example.com/wronglyindirect v1.0.0 // indirect
	example.com/unused v1.0.0
	example.com/transitive v1.0.0 // indirect
	example.com/nested v1.0.0
	example.com/nested/sub v1.0.0 // indirect
)
`

func TestCheckReportsEachKindOfDrift(t *testing.T) {
	edges := []importEdge{
		{Importer: "example.com/app/a", Path: "example.com/direct/pkg", Module: "example.com/direct"},
		{Importer: "example.com/app/b", Path: "example.com/direct", Module: "example.com/direct"},
		{Importer: "example.com/app/a", Path: "example.com/wronglyindirect/x", Module: "example.com/wronglyindirect"},
		{Importer: "example.com/app/b", Path: "example.com/missing/y", Module: "example.com/missing"},
		// No module provides it and no requirement prefixes it.
		{Importer: "example.com/app/b", Path: "example.org/nowhere/z"},
		// Not provided by the build list, but the longest requirement
		// prefixing it is example.com/nested/sub, not example.com/nested.
		{Importer: "example.com/app/c", Path: "example.com/nested/sub/gone"},
		// The module's own packages never count.
		{Importer: "example.com/app/c", Path: "example.com/app/a", Module: "example.com/app"},
		{Importer: "example.com/app/c", Path: "example.com/app/notyet"},
	}
	got, err := check([]byte(fixtureGoMod), edges)
	if err != nil {
		t.Fatal(err)
	}
	want := []problem{
		{Kind: markedIndirect, Module: "example.com/nested/sub", Importers: []string{"example.com/app/c"}},
		{Kind: markedIndirect, Module: "example.com/wronglyindirect", Importers: []string{"example.com/app/a"}},
		{Kind: markedDirect, Module: "example.com/nested"},
		{Kind: markedDirect, Module: "example.com/unused"},
		{Kind: notRequired, Module: "example.com/missing", Importers: []string{"example.com/app/b"}},
		{Kind: notRequired, Module: "example.org/nowhere/z", Importers: []string{"example.com/app/b"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("check:\n got %+v\nwant %+v", got, want)
	}
}

func TestCheckPassesWhenMarkersMatch(t *testing.T) {
	gomod := `module example.com/app

go 1.26

require example.com/direct v1.0.0

require example.com/transitive v1.0.0 // indirect
`
	edges := []importEdge{
		{Importer: "example.com/app", Path: "example.com/direct", Module: "example.com/direct"},
		{Importer: "example.com/app/sub", Path: "example.com/direct/x", Module: "example.com/direct"},
	}
	got, err := check([]byte(gomod), edges)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("check = %v, want no problems", got)
	}
}

func TestCheckRefusesAGoModWithoutModuleLine(t *testing.T) {
	if _, err := check([]byte("go 1.26\n"), nil); err == nil {
		t.Error("check accepted a go.mod without a module line")
	}
}

func TestProblemMessagesNameTheModuleAndTheFix(t *testing.T) {
	many := []string{"m/a", "m/b", "m/c", "m/d", "m/e"}
	cases := []struct {
		p    problem
		want []string
	}{
		{problem{Kind: markedIndirect, Module: "x.org/y", Importers: many}, []string{"x.org/y", "marked // indirect", "m/a, m/b, m/c and 2 more", "drop the // indirect"}},
		{problem{Kind: markedDirect, Module: "x.org/y"}, []string{"x.org/y", "no package of the module imports it", "mark it // indirect"}},
		{problem{Kind: notRequired, Module: "x.org/y", Importers: many[:1]}, []string{"x.org/y", "imported by m/a", "not required in go.mod"}},
	}
	for _, c := range cases {
		msg := c.p.String()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("message %q lacks %q", msg, w)
			}
		}
	}
}

// fixtureList is `go list -e -deps -test -json` output for a module
// example.com/app with one package, its test variant, its test main and
// their dependencies, trimmed to the fields read.
const fixtureList = `
{"ImportPath": "fmt", "Standard": true}
{"ImportPath": "example.com/lib/v2", "Module": {"Path": "example.com/lib/v2"}}
{"ImportPath": "example.com/testlib/assert", "Module": {"Path": "example.com/testlib"}}
{"ImportPath": "example.com/xtestlib", "Module": {"Path": "example.com/xtestlib"}}
{"ImportPath": "example.com/gone/pkg", "Error": {"Err": "no required module provides package"}}
{"ImportPath": "example.com/app", "Name": "app", "Module": {"Path": "example.com/app", "Main": true},
 "Imports": ["C", "fmt", "example.com/lib/v2", "example.com/gone/pkg"],
 "TestImports": ["example.com/testlib/assert", "fmt"],
 "XTestImports": ["example.com/app", "example.com/xtestlib"]}
{"ImportPath": "example.com/app [example.com/app.test]", "Name": "app", "ForTest": "example.com/app", "Module": {"Path": "example.com/app", "Main": true},
 "Imports": ["example.com/onlyinvariant"]}
{"ImportPath": "example.com/app.test", "Name": "main", "Module": {"Path": "example.com/app", "Main": true},
 "Imports": ["example.com/app [example.com/app.test]", "testing/internal/testdeps"]}
`

func TestImportEdgesFromGoList(t *testing.T) {
	pkgs, err := decodeList(strings.NewReader(fixtureList))
	if err != nil {
		t.Fatal(err)
	}
	got := importEdges(pkgs, nil)
	want := []importEdge{
		{Importer: "example.com/app", Path: "example.com/lib/v2", Module: "example.com/lib/v2"},
		{Importer: "example.com/app", Path: "example.com/gone/pkg"},
		{Importer: "example.com/app", Path: "example.com/testlib/assert", Module: "example.com/testlib"},
		{Importer: "example.com/app", Path: "example.com/app", Module: "example.com/app"},
		{Importer: "example.com/app", Path: "example.com/xtestlib", Module: "example.com/xtestlib"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("importEdges:\n got %+v\nwant %+v", got, want)
	}
}

func TestImportEdgesAddsIgnoredFilesImports(t *testing.T) {
	pkgs := []listedPackage{{
		ImportPath: "example.com/app", Module: &listedModule{Path: "example.com/app", Main: true},
		IgnoredGoFiles: []string{"x_windows.go"},
	}}
	got := importEdges(pkgs, func(listedPackage) []string { return []string{"golang.org/x/sys/windows", "syscall"} })
	want := []importEdge{{Importer: "example.com/app", Path: "golang.org/x/sys/windows"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("importEdges = %+v, want %+v", got, want)
	}
}

func TestIgnoredImportsSkipsOnlyTheIgnoreTag(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"win.go":     "//go:build windows\n\npackage p\n\nimport \"golang.org/x/sys/windows\"\n",
		"notlin.go":  "//go:build !linux && amd64\n\npackage p\n\nimport \"example.com/notlinux\"\n",
		"tool.go":    "//go:build ignore\n\npackage main\n\nimport \"example.com/generator\"\n",
		"notign.go":  "//go:build !ignore\n\npackage p\n\nimport \"example.com/notignored\"\n",
		"broken.go":  "package p\n\nimport (\n",
		"README.txt": "not go",
	}
	var names []string
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	got := ignoredImports(listedPackage{Dir: dir, IgnoredGoFiles: names})
	want := []string{"example.com/notignored", "example.com/notlinux", "golang.org/x/sys/windows"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ignoredImports = %v, want %v", got, want)
	}
}

func TestEvalAnyTags(t *testing.T) {
	cases := map[string]bool{
		"//go:build linux":              true,
		"//go:build !linux":             true,
		"//go:build linux && !linux":    true, // cmd/go's rule: each tag goes the way that helps
		"//go:build ignore":             false,
		"//go:build !ignore":            true,
		"//go:build ignore && linux":    false,
		"//go:build ignore || linux":    true,
		"// +build ignore":              false,
		"//go:build !(linux || ignore)": true,
	}
	for line, want := range cases {
		expr, err := constraint.Parse(line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got := evalAnyTags(expr, true); got != want {
			t.Errorf("%s: evalAnyTags = %v, want %v", line, got, want)
		}
	}
}

func TestAnyTagsLooksOnlyBeforeThePackageClause(t *testing.T) {
	src := "// Package p.\npackage p\n\n//go:build ignore\nvar _ = 0\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	if !anyTags(f.Comments, f.Package) {
		t.Error("a //go:build line after the package clause excluded the file")
	}
}
