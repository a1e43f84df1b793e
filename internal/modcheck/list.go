package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// listFields are the fields of `go list -json` that importEdges reads.
const listFields = "ImportPath,Name,Dir,Standard,ForTest,Module,Imports,TestImports,XTestImports,IgnoredGoFiles"

// listedPackage is one package of `go list -json` output.
type listedPackage struct {
	ImportPath     string
	Name           string
	Dir            string
	Standard       bool
	ForTest        string
	Module         *listedModule
	Imports        []string
	TestImports    []string
	XTestImports   []string
	IgnoredGoFiles []string
}

// listedModule is the module of a listedPackage.
type listedModule struct {
	Path string
	Main bool
}

// decodeList reads the stream of JSON objects `go list -json` writes.
func decodeList(r io.Reader) ([]listedPackage, error) {
	var pkgs []listedPackage
	dec := json.NewDecoder(r)
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// importEdges returns the imports the main module's packages make, from
// their own and their test files, leaving out the standard library. pkgs is
// `go list -e -deps -test` output, so that every imported package appears
// with its module. extra gives the imports of a package's files the current
// build context ignores (nil: none).
func importEdges(pkgs []listedPackage, extra func(listedPackage) []string) []importEdge {
	provider := map[string]string{} // package → module providing it
	standard := map[string]bool{}
	for _, p := range pkgs {
		path := basePath(p.ImportPath)
		switch {
		case p.Standard:
			standard[path] = true
		case p.Module != nil:
			provider[path] = p.Module.Path
		}
	}

	var edges []importEdge
	for _, p := range pkgs {
		if !ownPackage(p) {
			continue
		}
		imports := [][]string{p.Imports, p.TestImports, p.XTestImports}
		if extra != nil && len(p.IgnoredGoFiles) > 0 {
			imports = append(imports, extra(p))
		}
		seen := map[string]bool{}
		for _, list := range imports {
			for _, imp := range list {
				path := basePath(imp)
				if seen[path] || path == "C" || standard[path] || (provider[path] == "" && looksStandard(path)) {
					continue
				}
				seen[path] = true
				edges = append(edges, importEdge{Importer: p.ImportPath, Path: path, Module: provider[path]})
			}
		}
	}
	return edges
}

// ownPackage reports whether p is a package of the main module as written,
// not a test variant of one or a generated test main.
func ownPackage(p listedPackage) bool {
	if p.Module == nil || !p.Module.Main || p.ForTest != "" || strings.Contains(p.ImportPath, " [") {
		return false
	}
	return !(p.Name == "main" && strings.HasSuffix(p.ImportPath, ".test"))
}

// basePath drops the " [p.test]" suffix go list gives test variants.
func basePath(importPath string) string {
	path, _, _ := strings.Cut(importPath, " [")
	return path
}

// looksStandard applies the go command's rule for an import path no
// package of the list resolved: a first element without a dot is the
// standard library's.
func looksStandard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// ignoredImports returns the imports of p's ignored files that tidy still
// counts: those of every file except one excluded by the "ignore" tag.
func ignoredImports(p listedPackage) []string {
	var imports []string
	fset := token.NewFileSet()
	for _, name := range p.IgnoredGoFiles {
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			// A file being edited may not parse; go list reported what it could.
			fmt.Fprintf(os.Stderr, "modcheck: skipping %s: %v\n", filepath.Join(p.Dir, name), err)
			continue
		}
		if !anyTags(f.Comments, f.Package) {
			continue
		}
		for _, spec := range f.Imports {
			if path, err := strconv.Unquote(spec.Path.Value); err == nil {
				imports = append(imports, path)
			}
		}
	}
	sort.Strings(imports)
	return imports
}

// anyTags reports whether the build constraints before the package clause
// can hold for some GOOS, GOARCH and tags other than "ignore": the test
// `go mod tidy` applies.
func anyTags(groups []*ast.CommentGroup, pkg token.Pos) bool {
	for _, g := range groups {
		if g.Pos() >= pkg {
			break
		}
		for _, c := range g.List {
			if !constraint.IsGoBuild(c.Text) && !constraint.IsPlusBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				continue
			}
			if !evalAnyTags(expr, true) {
				return false
			}
		}
	}
	return true
}

// evalAnyTags evaluates x with every tag but "ignore" taken as whatever
// makes x hold (prefer flips under a negation), as cmd/go does for tidy.
func evalAnyTags(x constraint.Expr, prefer bool) bool {
	switch x := x.(type) {
	case *constraint.TagExpr:
		return x.Tag != "ignore" && prefer
	case *constraint.NotExpr:
		return !evalAnyTags(x.X, !prefer)
	case *constraint.AndExpr:
		return evalAnyTags(x.X, prefer) && evalAnyTags(x.Y, prefer)
	case *constraint.OrExpr:
		return evalAnyTags(x.X, prefer) || evalAnyTags(x.Y, prefer)
	}
	return true
}
